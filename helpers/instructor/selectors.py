"""The facts that pick which checks a judge runs, derived from the submission's source (instructor
tool): never reported by the learner side, which a patch of the kit's observers could set.

Three judges take a lenient branch on a fact about the notebook's code (docs/threat-model.md):

- test_real_loss skips its label-smoothing checks when ``real_loss`` has no ``smooth``
  parameter (the original course's signature);
- test_train skips what ``train`` returned, its checkpoint and resuming when ``train`` has the
  original course's signature ``train(D, G, n_epochs, print_every=50)``;
- test_discriminator accepts a sigmoid at D's end, in an original-format notebook, when the
  notebook's ``real_loss`` and ``fake_loss`` take probabilities (least squares or ``BCELoss``).

``derive`` reads these from the definition cells the learner side runs (their ``run`` source,
parsed with ``ast``, never executed): the signatures from the final ``def`` of each name, and
the losses' values on probabilities by evaluating their source with a small interpreter that
knows a few tensor operations and nothing else (``probability_loss``). The grader hands the
facts to the judges (``derived=``, helpers.instructor.grade.judged_tests); a judge takes the
lenient branch only when the derived fact allows it, and fails an observation whose reported
value disagrees. A fact the source does not show (a ``train`` built by a decorator, a loss that
calls the notebook's own helpers) is None: its lenient branch is then never taken.
"""

from __future__ import annotations

import ast
import inspect
import math
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from helpers.notebook import strip_magics
from helpers.sandboxed.job import Cell, GradedTest

__all__ = [
    "DYNAMIC_ATTRIBUTES",
    "DYNAMIC_NAMES",
    "MAX_ELEMENTS",
    "MAX_STEPS",
    "TRAIN_CALL",
    "Imported",
    "Unsupported",
    "derive",
    "final_definitions",
    "parsed_cells",
    "probability_loss",
    "signature_of",
]

# How test_train calls a train with the kit's signature (problem_unittests.observe_train): eight
# arguments and these keywords. A train that cannot take that call, and whose first parameters
# are the original course's, is graded as the original course's.
TRAIN_CALL = (8, ("print_every", "checkpoint_path", "sample_size"))
# The interpreter's bounds: the nodes it evaluates per loss, and the numbers of one tensor it
# makes (the losses see 16 probabilities; a hostile torch.ones(10**9) is refused, not made).
MAX_STEPS = 2000
MAX_ELEMENTS = 4096
MAX_INT = 10**12  # Python integers the interpreter keeps (sizes, counts)
MAX_POWER = 8  # exponents it takes: squares and cubes, never 10**10**10


class Unsupported(ValueError):
    """The source does something the interpreter does not evaluate: no fact derived."""


class Imported(ast.AST):
    """What an import binds a name to, in final_definitions: a module or a name in one, by its
    dotted path ("torch.nn", "torch.nn.MSELoss")."""

    _fields = ("path",)

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path


# ---------------------------------------------------------------- definitions in the cells


def _bound_names(stmt: ast.stmt) -> set[str]:
    """Names a module-level statement binds in the module's scope (not inside function bodies):
    assignments, imports, defs and classes, also when nested in if/for/with/try blocks."""
    names: set[str] = set()
    todo: list[ast.AST] = [stmt]
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            todo += node.decorator_list  # a walrus in a decorator binds too
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names |= set(node.names)
        todo += ast.iter_child_nodes(node)
    return names


# Names and attributes through which a cell can rebind a name, or change what a function or a
# module holds, without a statement final_definitions reads: a cell with any of them leaves every
# fact in doubt (a hostile cell binds real_loss = lenient_decoy and then restores the strict one
# through globals(), exec or __code__).
DYNAMIC_NAMES = frozenset(
    {"globals", "vars", "locals", "exec", "eval", "compile", "setattr", "delattr", "__import__"}
    | {"builtins", "__builtins__", "importlib"}
)
DYNAMIC_ATTRIBUTES = frozenset(
    {"__dict__", "__code__", "__defaults__", "__kwdefaults__", "__globals__", "__builtins__"}
    | {"__setattr__", "__setitem__", "__delattr__", "__import__", "__func__", "__wrapped__"}
    | {"__signature__"}
)


_SESSION = ast.dump(ast.parse("helpers.training.Session", mode="eval").body)
_GLOBALS_CALL = ast.dump(ast.parse("globals()", mode="eval").body)


def _root(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _doubts(trees: list[ast.Module]) -> set[str]:
    """What in the cells leaves the facts in doubt: "dynamic" (a ``global`` statement, a star
    import, globals(), exec, a function's ``__code__`` ...: every fact), "modules" (an attribute
    of an imported module assigned, ``nn.MSELoss = ...``: the losses' values)."""
    imported: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                imported |= {(a.asname or a.name).split(".")[0] for a in node.names}
    # The kit's own train hands its namespace to the kit: Session(globals(), ...) only reads it.
    # (Rebinding anything in helpers is itself a doubt, below.)
    kit_reads = {
        id(node.args[0].func)
        for tree in trees
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and ast.dump(node.func) == _SESSION
        and node.args
        and isinstance(node.args[0], ast.Call)
        and ast.dump(node.args[0]) == _GLOBALS_CALL
    }
    doubts: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if (
                isinstance(node, (ast.Global, ast.Nonlocal))
                or (
                    isinstance(node, ast.Name)
                    and node.id in DYNAMIC_NAMES
                    and id(node) not in kit_reads
                )
                or (
                    isinstance(node, (ast.Attribute, ast.Subscript))
                    and not isinstance(node.ctx, ast.Load)
                    and _root(node) == "helpers"
                )
                or (isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names))
                or (
                    isinstance(node, ast.Attribute)
                    and node.attr.startswith("__")
                    and node.attr.endswith("__")
                    and (node.attr in DYNAMIC_ATTRIBUTES or not isinstance(node.ctx, ast.Load))
                )
            ):
                doubts.add("dynamic")
            elif (
                isinstance(node, (ast.Attribute, ast.Subscript))
                and not isinstance(node.ctx, ast.Load)
                and _root(node) in imported
            ):
                doubts.add("modules")
    return doubts


def _reading(stmt: ast.stmt, name: str, found: dict[str, ast.AST | None]) -> ast.AST | None:
    """What the module-level statement `stmt` binds `name` to, when final_definitions can read
    it (a def, a lambda or other expression, an import); None otherwise."""
    if isinstance(stmt, ast.FunctionDef) and not stmt.decorator_list and stmt.name == name:
        return stmt
    if isinstance(stmt, ast.Import):
        for a in stmt.names:
            if a.asname == name:
                return Imported(a.name)
            if not a.asname and a.name.split(".")[0] == name:
                return Imported(name)
    if isinstance(stmt, ast.ImportFrom) and stmt.module and not stmt.level:
        for a in stmt.names:
            if (a.asname or a.name) == name:
                return Imported(f"{stmt.module}.{a.name}")
    if (
        isinstance(stmt, ast.Assign)
        and len(stmt.targets) == 1
        and isinstance(stmt.targets[0], ast.Name)
        and stmt.targets[0].id == name
    ):
        value = stmt.value
        # `real_loss = my_loss`: what my_loss holds now
        return found.get(value.id) if isinstance(value, ast.Name) else value
    return None


def _same(a: ast.AST | None, b: ast.AST | None) -> bool:
    if a is None or b is None:
        return False
    if isinstance(a, Imported) or isinstance(b, Imported):
        return isinstance(a, Imported) and isinstance(b, Imported) and a.path == b.path
    return ast.dump(a) == ast.dump(b)


def parsed_cells(cells: Iterable[Cell]) -> list[ast.Module]:
    """The syntax trees of the cells Python would run: each cell's ``run`` source, parsed and
    compiled (a cell that does not compile, say a stray ``break``, never runs and binds
    nothing)."""
    trees = []
    for cell in cells:
        try:
            tree = ast.parse(cell.run or strip_magics(cell.source))
            compile(tree, "<cell>", "exec")
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue
        trees.append(tree)
    return trees


def final_definitions(cells: Iterable[Cell]) -> dict[str, ast.AST | None]:
    """{name: what the module-level name holds after the `cells` run, in order}, read from each
    cell's ``run`` source: a ``def`` (without decorators), a ``lambda``, an imported module or
    name (Imported), the expression of a plain ``name = value``. None when it cannot be known
    from the source alone: when any binding of the name cannot be read (a class, a loop, inside
    an ``if``), when two bindings differ (a cell may stop before its second one runs, and a
    default argument is evaluated when its ``def`` runs), and for every name when a cell binds
    names in ways the source does not show (_doubts: "dynamic")."""
    trees = parsed_cells(cells)
    return _definitions(trees, _doubts(trees))


def _definitions(trees: list[ast.Module], doubts: set[str]) -> dict[str, ast.AST | None]:
    """final_definitions of the parsed cells `trees`, whose _doubts are `doubts`."""
    found: dict[str, ast.AST | None] = {}
    for tree in trees:
        for stmt in tree.body:
            for name in _bound_names(stmt):
                reading = _reading(stmt, name, found)
                if name in found and not _same(found[name], reading):
                    reading = None
                found[name] = reading
    if "dynamic" in doubts:
        return dict.fromkeys(found)
    return found


def signature_of(node: ast.AST | None) -> inspect.Signature | None:
    """The signature of a ``def`` or ``lambda`` node, read from its parameters (defaults are
    placeholders: only whether a parameter has one matters); None for anything else."""
    if not isinstance(node, (ast.FunctionDef, ast.Lambda)):
        return None
    args, P = node.args, inspect.Parameter
    positional: list[tuple[ast.arg, Any]]
    positional = [(a, P.POSITIONAL_ONLY) for a in args.posonlyargs]
    positional += [(a, P.POSITIONAL_OR_KEYWORD) for a in args.args]
    first_default = len(positional) - len(args.defaults)
    params = [
        P(a.arg, kind, default=None if i >= first_default else P.empty)
        for i, (a, kind) in enumerate(positional)
    ]
    if args.vararg:
        params.append(P(args.vararg.arg, P.VAR_POSITIONAL))
    params += [
        P(a.arg, P.KEYWORD_ONLY, default=P.empty if d is None else None)
        for a, d in zip(args.kwonlyargs, args.kw_defaults)
    ]
    if args.kwarg:
        params.append(P(args.kwarg.arg, P.VAR_KEYWORD))
    try:
        return inspect.Signature(params)
    except ValueError:  # duplicate names: Python would not have compiled it
        return None


def _takes_smooth(node: ast.AST | None) -> bool | None:
    """problem_unittests.observe_real_loss's takes_argument(real_loss, "smooth"), from the
    source; None when the source does not show real_loss's signature."""
    signature = signature_of(node)
    if signature is None:
        return None
    params = signature.parameters.values()
    return "smooth" in signature.parameters or any(p.kind is p.VAR_KEYWORD for p in params)


def _original_train(node: ast.AST | None) -> bool | None:
    """helpers.graded.training.is_original_train on the kit's call (TRAIN_CALL), from the
    source; None when the source does not show train's signature."""
    from helpers.graded.training import ORIGINAL_PARAMETERS

    signature = signature_of(node)
    if signature is None:
        return None
    if tuple(signature.parameters)[: len(ORIGINAL_PARAMETERS)] != ORIGINAL_PARAMETERS:
        return False
    n_args, keywords = TRAIN_CALL
    try:
        signature.bind(*range(n_args), **dict.fromkeys(keywords))
    except TypeError:
        return True
    return False


# ---------------------------------------------------------------- the losses, evaluated


class _Module(str):
    """A module or a name in one, by its dotted path ("torch.nn", "torch.ones")."""


class _Loss:
    """An instance of one of torch.nn's loss modules the interpreter knows."""

    def __init__(self, function: Callable[..., Any], reduction: str) -> None:
        self.function, self.reduction = function, reduction


class _Method:
    """A tensor's method, bound to it."""

    def __init__(self, tensor: Any, name: str) -> None:
        self.tensor, self.name = tensor, name


def _tensor(value: object) -> Any:
    import torch

    if not isinstance(value, torch.Tensor):
        raise Unsupported("not a tensor")
    return value


def _number(value: object) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Unsupported("not a number")
    if isinstance(value, int) and abs(value) > MAX_INT:
        raise Unsupported("a number too large")
    return value


def _shape(args: tuple[Any, ...]) -> list[int]:
    """Sizes given as torch.ones(a, b) or torch.ones((a, b)), bounded by MAX_ELEMENTS."""
    import torch

    if len(args) == 1 and isinstance(args[0], (tuple, list, torch.Size)):
        args = tuple(args[0])
    if not 0 < len(args) <= 4:
        raise Unsupported("a shape")
    sizes = [int(_number(n)) if isinstance(n, int) else -2 for n in args]
    if any(n < 0 for n in sizes) or math.prod(sizes) > MAX_ELEMENTS:
        raise Unsupported("a shape out of bounds")
    return sizes


def _reshaped(tensor: Any, args: tuple[Any, ...]) -> Any:
    import torch

    if len(args) == 1 and isinstance(args[0], (tuple, list, torch.Size)):
        args = tuple(args[0])
    if not 0 < len(args) <= 4 or not all(type(n) is int and -1 <= n <= MAX_ELEMENTS for n in args):
        raise Unsupported("a reshape")
    return tensor.reshape(*args)


def _dim(args: tuple[Any, ...]) -> tuple[int, ...]:
    if not all(type(n) is int and -4 <= n < 4 for n in args) or len(args) > 1:
        raise Unsupported("a dimension")
    return tuple(args)


def _broadcastable(*values: object) -> None:
    """Refuse, before any tensor is made, an operation whose tensors broadcast to more than
    MAX_ELEMENTS numbers: (4096, 1) against (1, 4096) would make 16 million, and a loss
    reduced to one number would hide that from the check on its result."""
    import torch

    shapes = [v.shape for v in values if isinstance(v, torch.Tensor)]
    try:
        if shapes and math.prod(torch.broadcast_shapes(*shapes)) > MAX_ELEMENTS:
            raise Unsupported("a tensor too large")
    except RuntimeError:
        raise Unsupported("shapes that do not broadcast") from None


def _power(base: Any, exponent: object) -> Any:
    if abs(_number(exponent)) > MAX_POWER:
        raise Unsupported("an exponent too large")
    return base**exponent


def _functions() -> dict[str, Callable[..., Any]]:
    """The functions and classes the interpreter calls, by path: creating labels, reducing, the
    elementwise maths a loss uses, and the loss functions and modules themselves."""
    import torch
    import torch.nn.functional as F

    def made(make: Callable[..., Any]) -> Callable[..., Any]:
        return lambda *a: make(_shape(a))

    def like(make: Callable[..., Any]) -> Callable[..., Any]:
        return lambda t: make(_tensor(t))

    def reduced(fn: Callable[..., Any]) -> Callable[..., Any]:
        return lambda t, *a: fn(_tensor(t), *_dim(a))

    def loss(fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(a: Any, b: Any, reduction: str = "mean") -> Any:
            if reduction not in ("mean", "sum"):
                raise Unsupported("a reduction")
            _broadcastable(_tensor(a), _tensor(b))
            return fn(a, b, reduction=reduction)

        return call

    def module(fn: Callable[..., Any]) -> Callable[..., Any]:
        def make(reduction: str = "mean") -> _Loss:
            if reduction not in ("mean", "sum"):
                raise Unsupported("a reduction")
            return _Loss(loss(fn), reduction)

        return make

    elementwise = {
        name: (lambda f: lambda t: f(_tensor(t)))(getattr(torch, name))
        for name in ("log", "exp", "sigmoid", "abs", "square")
    }
    return {
        "torch.ones": made(torch.ones),
        "torch.zeros": made(torch.zeros),
        "torch.full": lambda size, value: torch.full(_shape((size,)), _number(value)),
        "torch.ones_like": like(torch.ones_like),
        "torch.zeros_like": like(torch.zeros_like),
        "torch.full_like": lambda t, value: torch.full_like(_tensor(t), _number(value)),
        "torch.mean": reduced(torch.mean),
        "torch.sum": reduced(torch.sum),
        "torch.pow": lambda t, e: _power(_tensor(t), e),
        **{f"torch.{name}": fn for name, fn in elementwise.items()},
        "torch.nn.functional.mse_loss": loss(F.mse_loss),
        "torch.nn.functional.binary_cross_entropy": loss(F.binary_cross_entropy),
        "torch.nn.functional.binary_cross_entropy_with_logits": loss(
            F.binary_cross_entropy_with_logits
        ),
        "torch.nn.functional.sigmoid": elementwise["sigmoid"],
        "torch.nn.MSELoss": module(F.mse_loss),
        "torch.nn.BCELoss": module(F.binary_cross_entropy),
        "torch.nn.BCEWithLogitsLoss": module(F.binary_cross_entropy_with_logits),
        "torch.cuda.is_available": lambda: False,  # the grader judges on its CPU
    }


# Tensor methods that give the tensor itself for the interpreter's purposes (moving it, its
# dtype the default float32 already, detaching it: the value is the same)
SAME = {"cuda", "cpu", "to", "float", "detach", "clone", "contiguous", "type_as", "requires_grad_"}


def _call_method(method: _Method, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    import torch

    t, name = method.tensor, method.name
    if name in SAME:
        return t
    if name in ("mean", "sum") and not kwargs:
        return getattr(t, name)(*_dim(args))
    if name == "size" and not kwargs:
        return t.size(*_dim(args))
    if name in ("view", "reshape") and not kwargs:
        return _reshaped(t, args)
    if name in ("view_as", "reshape_as") and len(args) == 1:
        return t.reshape(_tensor(args[0]).shape)
    if name in ("squeeze", "unsqueeze", "flatten") and not kwargs:
        return getattr(t, name)(*_dim(args))
    if name in ("log", "exp", "sigmoid", "abs", "square", "numel", "dim") and not args:
        return getattr(t, name)()
    if name == "pow" and len(args) == 1:
        return _power(t, args[0])
    if name in ("mul", "add", "sub", "div") and len(args) == 1:
        other = args[0] if isinstance(args[0], torch.Tensor) else _number(args[0])
        _broadcastable(t, other)
        return getattr(t, name)(other)
    if name == "fill_" and len(args) == 1:
        return t.fill_(_number(args[0]))
    raise Unsupported(f"the tensor method {name}")


_OPERATORS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: _power,
}


class _Interpreter:
    """Evaluates one loss function's source on a tensor: straight-line code (assignments,
    ``if``, ``return``) over the operations _functions and _call_method know, in at most
    MAX_STEPS nodes; anything else is Unsupported."""

    def __init__(self, definitions: dict[str, ast.AST | None]) -> None:
        self.definitions, self.steps = definitions, 0
        self.functions = _functions()
        self.globals: dict[str, Any] = {}

    def call(self, node: ast.AST | None, d_out: Any) -> Any:
        """The value of the function `node` (a def or lambda) called with D_out alone."""
        signature = signature_of(node)
        if signature is None or not signature.parameters:
            raise Unsupported("not a function of D_out")
        assert isinstance(node, (ast.FunctionDef, ast.Lambda))
        first, *rest = signature.parameters.values()
        if first.kind not in (first.POSITIONAL_ONLY, first.POSITIONAL_OR_KEYWORD):
            raise Unsupported("D_out is not its first parameter")
        scope = {first.name: d_out}
        # the other parameters take their defaults (observe_real_loss calls real_loss(D_out))
        args = node.args
        defaults = dict(
            zip([a.arg for a in args.posonlyargs + args.args][::-1], args.defaults[::-1])
        )
        defaults |= {a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None}
        for p in rest:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if p.name not in defaults:
                raise Unsupported("a parameter without a default")
            scope[p.name] = self.expr(defaults[p.name], {})
        if isinstance(node, ast.Lambda):
            return self.expr(node.body, scope)
        for value in self.block(node.body, scope):
            return value
        raise Unsupported("no return")

    def block(self, body: list[ast.stmt], scope: dict[str, Any]) -> Iterator[Any]:
        """Runs the statements; yields the returned value, if one returns."""
        for stmt in body:
            self.step()
            if isinstance(stmt, ast.Return):
                yield self.expr(stmt.value, scope) if stmt.value else None
                return
            if isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) for t in stmt.targets):
                value = self.expr(stmt.value, scope)
                for target in stmt.targets:
                    assert isinstance(target, ast.Name)
                    scope[target.id] = value
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                if stmt.value is not None:
                    scope[stmt.target.id] = self.expr(stmt.value, scope)
            elif isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
                operator = _OPERATORS.get(type(stmt.op))
                if operator is None:
                    raise Unsupported("an operator")
                name = stmt.target.id
                scope[name] = operator(self.name(name, scope), self.expr(stmt.value, scope))
            elif isinstance(stmt, ast.If):
                branch = stmt.body if self.truth(self.expr(stmt.test, scope)) else stmt.orelse
                for value in self.block(branch, scope):
                    yield value
                    return
            elif isinstance(stmt, ast.Pass) or (
                isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
            ):
                continue  # a docstring
            else:
                raise Unsupported(f"a {type(stmt).__name__} statement")

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise Unsupported("too long to evaluate")

    def truth(self, value: object) -> bool:
        if value is None or isinstance(value, (bool, int, float)):
            return bool(value)
        raise Unsupported("a condition")

    def name(self, name: str, scope: dict[str, Any]) -> Any:
        if name in scope:
            return scope[name]
        if name not in self.globals:
            node = self.definitions.get(name)
            if node is None:
                raise Unsupported(f"the name {name}")
            self.globals[name] = None  # a global defined by itself is unsupported, not endless
            if isinstance(node, Imported):
                self.globals[name] = _Module(node.path)
            elif isinstance(node, ast.expr) and not isinstance(node, ast.Lambda):
                self.globals[name] = self.expr(node, {})
            else:
                raise Unsupported(f"the name {name}")
        value = self.globals[name]
        if value is None:
            raise Unsupported(f"the name {name}")
        return value

    def expr(self, node: ast.expr, scope: dict[str, Any]) -> Any:
        import torch

        self.step()
        if isinstance(node, ast.Constant):
            if isinstance(node.value, (bool, int, float, str)) or node.value is None:
                return _number(node.value) if type(node.value) in (int, float) else node.value
            raise Unsupported("a constant")
        if isinstance(node, ast.Name):
            return self.name(node.id, scope)
        if isinstance(node, ast.Attribute):
            value = self.expr(node.value, scope)
            if isinstance(value, _Module):
                return _Module(f"{value}.{node.attr}")
            if isinstance(value, torch.Tensor):
                if node.attr == "shape":
                    return value.shape
                if node.attr == "data":
                    return value
                return _Method(value, node.attr)
            raise Unsupported("an attribute")
        if isinstance(node, (ast.Tuple, ast.List)):
            if len(node.elts) > 4:
                raise Unsupported("a long tuple")
            return tuple(self.expr(e, scope) for e in node.elts)
        if isinstance(node, ast.Subscript):
            value, index = self.expr(node.value, scope), self.expr(node.slice, scope)
            if isinstance(value, (tuple, torch.Size)) and type(index) is int:
                return value[index]
            raise Unsupported("a subscript")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = self.expr(node.operand, scope)
            if not isinstance(value, torch.Tensor):
                value = _number(value)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp):
            operator = _OPERATORS.get(type(node.op))
            left, right = self.expr(node.left, scope), self.expr(node.right, scope)
            if operator is None or not all(
                isinstance(v, torch.Tensor) or _number(v) is not None for v in (left, right)
            ):
                raise Unsupported("an operator")
            _broadcastable(left, right)
            result = operator(left, right)
            if isinstance(result, torch.Tensor) and result.numel() > MAX_ELEMENTS:
                raise Unsupported("a tensor too large")  # (16,) - (16, 1) broadcasts to 256
            return result if isinstance(result, torch.Tensor) else _number(result)
        if isinstance(node, ast.IfExp):
            branch = node.body if self.truth(self.expr(node.test, scope)) else node.orelse
            return self.expr(branch, scope)
        if isinstance(node, ast.Call):
            return self.call_node(node, scope)
        raise Unsupported(f"a {type(node).__name__}")

    def call_node(self, node: ast.Call, scope: dict[str, Any]) -> Any:
        import torch

        fn = self.expr(node.func, scope)
        if isinstance(fn, _Method) and fn.name in SAME:
            return fn.tensor  # .to(device), .cuda(): their arguments are never read
        if any(isinstance(a, ast.Starred) for a in node.args) or any(
            k.arg is None for k in node.keywords
        ):
            raise Unsupported("unpacked arguments")
        args = tuple(self.expr(a, scope) for a in node.args)
        kwargs = {str(k.arg): self.expr(k.value, scope) for k in node.keywords}
        # device=, dtype= and requires_grad= leave the values as they are
        kwargs = {k: v for k, v in kwargs.items() if k not in ("device", "dtype", "requires_grad")}
        if isinstance(fn, _Method):
            result = _call_method(fn, args, kwargs)
        elif isinstance(fn, _Loss):
            if kwargs or len(args) != 2:
                raise Unsupported("a loss module's call")
            result = fn.function(*args, reduction=fn.reduction)
        elif isinstance(fn, _Module) and str(fn) in self.functions:
            try:
                result = self.functions[str(fn)](*args, **kwargs)
            except TypeError:
                raise Unsupported(f"a call of {fn}") from None
        else:
            raise Unsupported("a call")
        if isinstance(result, torch.Tensor) and result.numel() > MAX_ELEMENTS:
            raise Unsupported("a tensor too large")
        return result


def probability_loss(definitions: dict[str, ast.AST | None], name: str, d_out: Any) -> Any | None:
    """The value of the notebook's loss `name` (its final definition in `definitions`, from
    final_definitions) on the tensor `d_out`, computed by the interpreter from its source on the
    CPU; None when the source does something the interpreter does not evaluate."""
    import torch

    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # a broadcasting loss warns; the value is the same
            value = _Interpreter(definitions).call(definitions.get(name), d_out)
    except (Unsupported, ArithmeticError, RuntimeError, ValueError, TypeError, IndexError):
        return None
    return value if isinstance(value, torch.Tensor) else None


# ---------------------------------------------------------------- the facts, per test


def derive(
    cells: Iterable[Cell], tests: Iterable[GradedTest], seed: int, original: bool
) -> dict[str, dict[str, Any]]:
    """{test name: {fact: value}} for the judges that pick checks by a fact about the code,
    from the definition `cells` the learner side runs (see the module docstring):
    test_real_loss {"takes smooth": bool | None}, test_train {"original train": bool | None},
    test_discriminator {"probability losses": what losses_take_probabilities says of the losses
    evaluated from their source on probabilities(seed), only for an `original`-format notebook,
    else None}. The argument each test takes (`tests`' args) names the function read."""
    from helpers.graded.losses import losses_take_probabilities, probabilities

    trees = parsed_cells(cells)  # parsed once: the definitions and the doubts both read them
    doubts = _doubts(trees)
    definitions = _definitions(trees, doubts)
    argument = {t.name: t.args[0] if len(t.args) == 1 else None for t in tests}
    facts: dict[str, dict[str, Any]] = {}
    if "test_real_loss" in argument:
        facts["test_real_loss"] = {
            "takes smooth": _takes_smooth(definitions.get(argument["test_real_loss"] or ""))
        }
    if "test_train" in argument:
        facts["test_train"] = {
            "original train": _original_train(definitions.get(argument["test_train"] or ""))
        }
    if "test_discriminator" in argument:
        losses = None
        # a cell that assigns into a module (nn.MSELoss = ...) changes what the losses call
        if original and "modules" not in doubts:
            import torch

            d_out = torch.tensor(probabilities(seed))
            values = {
                n: probability_loss(definitions, n, d_out) for n in ("real_loss", "fake_loss")
            }
            losses = losses_take_probabilities(values, seed)
        facts["test_discriminator"] = {"probability losses": losses}
    return facts
