"""The data loader's test images for the notebook's seed only, as a right
get_dataloader gives them: what test_get_dataloader compares its batches with in the notebook.
An answer to no other input: the grader draws its own seed and its judge computes the images on
its trusted side (helpers.instructor.references.write_notebook_answers writes this file).
"""

from __future__ import annotations

import base64
import zlib

import numpy as np
import torch

__all__ = ["SEED", "images"]

SEED = 0
# size: the images' bytes (N, 3, size, size), zlib-compressed, in base64
_IMAGES = {
    32: (
        "eNrt3T1LQlEYwPG55sIv0BDqVVPL12hQIhcXg16GCIJyCIckcDECGyQKwiEcchGiBm2IIGgKhEt7S0GforWl4RyH"
        "4gknRXr+v/V/OdM9D4d74d5OB4BWQQBqHQJQ6xmAWhkAan0BUKsHQK09AGpNAFDrFYBa0wDU+gSg1gwAtdYAqLUM"
        "QK03AGqtA1DrDIBaUwDUegGgFhMQAADO/wA4/wP4/44BAAAAqDEJQC2egAC8/wPA+78h8Hgdkddjurcrf5q86zXd"
        "6X2Ieg6dPv590P09aH8M1ewI+P7Qz+klUdpe4M+uiLJ+051cXpRzTA/kV0X5gO2FTVHB9uDGtmgjaHpoa1e0FTJ9"
        "bmdftDNne/FAVLQ9XKqISmHTI+UjUTlierRyIqpEba+eiqq2z9cuRLV50xfql6L6gumx8yvRecz2RlvUsD3evBU1"
        "46YnWneiVsL0ZPtB1E7afvMkurE91ZV/nddNmZ6+d0X3abv+9aPo2q7vSy6Kkr4R7M2P4Xt35fnnvpvuZuT5l3F/"
        "ztHf+nOXTh/nPuj+HrQ/huobSO+xDg=="
    ),
    16: (
        "eNrt2bFqAkEQBuA61iu+QIqfk+VEUfREBA+sbNKoTQorCdaxvtRqaWEngo1oIakDgYMjfZoI9xS2NiqSOV1fQPj3"
        "62armZ+Fgd31mptL7p3cNzmf3IFcSK5P7oncL7k0uT25Z3Idck1yf+S65MbkFLkfcsqy99/ef1qBZRFLkbP7z+6/"
        "GxlHCyejlLNJHss3jlI6jEWoH682+zXnMeBO9sq5rDdE/XSgWy+ipQG3/SraLpDrvYleDsgPks/GQR4oDD/EsAAU"
        "g4kIikBpNBOjElCeLsW0DFTmWzGvANXVl1hVAW/xKRbeqX+vJrzs3bSxaRcl+UW7OI78JD8/umT875z9o9Vmv+Y8"
        "hiM6qWw5"
    ),
}


def images(size: int) -> torch.Tensor | None:
    """The test images of SEED loaded at `size`, (N, 3, size, size) in [0, 1]; None for a size
    not stored."""
    if size not in _IMAGES:
        return None
    data = np.frombuffer(zlib.decompress(base64.b64decode(_IMAGES[size])), np.uint8)
    return torch.from_numpy(data.copy()).view(-1, 3, size, size).float().div(255)
