"""Smoke tests of the speed and quality benchmarks on tiny data: they finish and report both recipes.

They check that the scripts run and what they print, never how fast anything was.
"""
import ast
import json
from pathlib import Path

import pytest
import torch

from benchmarks import quality, throughput
from helpers.faces import make_faces


@pytest.fixture(scope='module')
def faces(tmp_path_factory):
    """160 built-in faces: enough to hold out 2 x 16 and still fill a course batch of 128."""
    return make_faces(tmp_path_factory.mktemp('data') / 'faces', n=160, workers=1, progress=False)


@pytest.fixture
def one_thread():
    """--threads 1 keeps the tiny runs quick on a busy machine; the suite's setting is restored."""
    before = torch.get_num_threads()
    yield ['--threads', '1']
    torch.set_num_threads(before)


def last_json(out):
    return json.loads(out.strip().splitlines()[-1])


def test_throughput_reports_both_recipes_in_a_table_and_a_json_line(faces, tmp_path, capsys,
                                                                   one_thread):
    path = tmp_path / 'result.json'
    result = throughput.main(['--data', str(faces), '--steps', '2', '--warmup', '1',
                              '--conv-dim', '8', '--batch-size', '8', '--device', 'cpu',
                              '--in-process', '--json', str(path), *one_thread])
    out = capsys.readouterr().out
    printed = last_json(out)
    assert printed == result == json.loads(path.read_text())
    assert set(printed['recipes']) == {'course', 'kit'}
    for name, r in printed['recipes'].items():
        assert r['images'] == 2 * 8, f'{name}: expected 2 timed steps of 8 images'
        assert r['img_per_s'] > 0 and r['peak_rss_mb'] > 0
    assert printed['ratio_kit_over_course'] > 0
    assert printed['threads'] == 1 and printed['torch'] == torch.__version__
    assert 'course' in out and 'kit / course' in out


def test_throughput_course_loader_adds_center_crop_only_for_non_square_sources(tmp_path):
    from tests import imagefiles
    imagefiles.rgb_image(tmp_path / 'wide' / 'c' / 'a.png', size=(60, 40))
    imagefiles.rgb_image(tmp_path / 'square' / 'c' / 'a.png', size=(40, 40))
    assert throughput.sources_are_square(tmp_path / 'square')
    assert not throughput.sources_are_square(tmp_path / 'wide')
    wide = throughput.course_loader(tmp_path / 'wide', 32, 1, square=False)
    assert next(iter(wide))[0].shape == (1, 3, 32, 32)


def test_course_step_updates_both_networks(faces):
    ns = throughput.load_notebook()
    D, G = throughput.build_models(ns, 4, 4, 8)
    d_opt, g_opt = throughput.adam(ns, D), throughput.adam(ns, G)
    before = [p.detach().clone() for p in list(D.parameters()) + list(G.parameters())]
    real = torch.rand(4, 3, 32, 32)
    d_loss, g_loss = throughput.course_step(ns, D, G, d_opt, g_opt, real, 8, train_on_gpu=False)
    after = list(D.parameters()) + list(G.parameters())
    assert torch.isfinite(d_loss) and torch.isfinite(g_loss)
    assert sum(not torch.equal(a, b) for a, b in zip(before, after)) == len(before)


def test_quality_trains_both_recipes_and_saves_their_grids(faces, tmp_path, capsys, one_thread):
    result = quality.main(['--data', str(faces), '--budget', '0.5', '--n-eval', '16',
                           '--device', 'cpu', '--out', str(tmp_path / 'grids'), *one_thread])
    printed = last_json(capsys.readouterr().out)
    assert printed == result
    for name in ('course', 'kit'):
        r = printed['recipes'][name]
        assert r['steps'] >= 1 and r['swd'] > 0
        assert (tmp_path / 'grids' / f'{name}_samples.png').is_file()
    assert printed['recipes']['course']['settings']['conv_dim'] == 32
    # the kit recipe is the notebook's own hyperparameters cell
    assert printed['recipes']['kit']['settings']['d_conv_dim'] == throughput.load_notebook()['d_conv_dim']
    assert printed['real_vs_real_swd'] > 0 and (tmp_path / 'grids' / 'real.png').is_file()


def test_quality_refuses_a_folder_too_small_to_hold_out_images(faces, tmp_path):
    with pytest.raises(SystemExit, match='too few'):
        quality.main(['--data', str(faces), '--n-eval', '100', '--device', 'cpu',
                      '--out', str(tmp_path)])


@pytest.mark.parametrize('module', [throughput, quality])
def test_every_flag_is_explained_in_help(module, capsys):
    with pytest.raises(SystemExit):
        module.parse_args(['--help'])
    text = capsys.readouterr().out
    for flag in ('--data', '--device', '--json', '--threads'):
        assert flag in text


@pytest.mark.parametrize('module', [throughput, quality])
def test_benchmarks_use_public_helpers_and_the_notebook_settings(module):
    tree = ast.parse(Path(module.__file__).read_text(encoding='utf-8'))
    private = [f'{node.module}.{a.name}' for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) and (node.module or '').startswith('helpers')
               for a in node.names if a.name.startswith('_')]
    assert private == [], f'{module.__name__} imports private helpers: {private}'
    copied = [t.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
              for t in node.targets if isinstance(t, ast.Name)
              and t.id in {'Z_SIZE', 'LR', 'BETAS'}]
    assert copied == [], f'{module.__name__} copies settings the notebook defines: {copied}'
