"""e3nn without the parts a search never runs: a light import and a lean construction of matsym's network.

A search evaluates its network densely (:mod:`matsym._dense`): it reads the e3nn modules' instructions and
parameters, but never runs e3nn's own forward. Measured with ``python -X importtime`` and a profile of
``matsym find`` (Pm-3m -> a+b-b-, 40-atom cell, 2-core machine), three things e3nn does at import or construction
served only that unused forward:

- ``import e3nn.o3`` imports sympy (725 of its 737 ms in ``-X importtime``, loaded machine), for the symbolic
  Legendre polynomials of ``e3nn.o3._angular_spherical_harmonics`` (``SphericalHarmonicsAlphaBeta``,
  ``Legendre``, ...), which matsym does not use. :func:`import_o3` imports e3nn.o3 with that submodule
  deferred: its four names are loaded on first access (``e3nn.o3.Legendre`` works as before, it just imports
  sympy then). It also imports e3nn without ``torch._dynamo`` (e3nn decorates one function with
  ``torch.compiler.disable`` at import, which loads it: 0.8 s); matsym never compiles.
- every ``TensorProduct`` generates its forward as torch.fx code at construction: 2.7 of the 4.5 s (cProfile, loaded
  machine) of building the default search network. Inside :func:`lean_construction` that code is generated on
  the first call instead (:class:`_DeferredCode`), so :meth:`matsym.model.EquivariantNetwork.forward_e3nn` still
  runs e3nn's own code, path by path, while a search never pays for it. The generated code's constant buffers
  (Wigner 3j symbols) then live outside the module's ``state_dict``; they are constants, not weights.
- every activation is normalised by a Monte Carlo second moment over a million samples with a fixed seed
  (``e3nn.math.moment``): 1.1 s (cProfile) for the 12 activations of the default network, 4 distinct functions. Inside
  :func:`lean_construction` the moments are memoised per (function, power, dtype, device), and the million
  samples themselves, which are the same for every function (one generator seeded 0), are drawn once per (dtype,
  device): the same numbers, bit for bit (tested against e3nn's own ``moment``). Drawing them took 28 ms, four
  times per process before. The float64 CPU moments of matsym's four activations are tabulated
  (``_KNOWN_MOMENTS``, checked bit for bit against e3nn's ``moment`` by the tests), so a search draws none.

Both changes apply only inside :func:`lean_construction` and are undone on leaving it; with e3nn compiling
TorchScript (``jit_mode`` other than ``"eager"``, torch < 2.10) code generation is not deferred.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import threading
import types
from collections.abc import Iterator

import torch

__all__ = ["import_o3", "lean_construction"]

_ANGULAR = "e3nn.o3._angular_spherical_harmonics"
_ANGULAR_NAMES = (
    "SphericalHarmonicsAlphaBeta",
    "spherical_harmonics_alpha_beta",
    "spherical_harmonics_alpha",
    "Legendre",
)


def import_o3() -> types.ModuleType:
    """``e3nn.o3``, imported without ``torch._dynamo`` and with sympy deferred (see the module docstring)."""
    if "e3nn.o3" in sys.modules:
        return sys.modules["e3nn.o3"]
    original = torch.compiler.disable
    if "torch._dynamo" not in sys.modules:
        torch.compiler.disable = lambda fn=None, *args, **kwargs: fn if fn is not None else (lambda f: f)
    try:
        if "sympy" in sys.modules or _ANGULAR in sys.modules:
            import e3nn.o3  # noqa: F401
        else:
            _import_o3_deferring_angular()
    finally:
        torch.compiler.disable = original
    return sys.modules["e3nn.o3"]


def _import_o3_deferring_angular() -> None:
    placeholder = types.ModuleType(_ANGULAR)
    placeholder.__dict__.update(dict.fromkeys(_ANGULAR_NAMES))
    sys.modules[_ANGULAR] = placeholder
    try:
        import e3nn.o3 as o3
    except ImportError:  # an e3nn that wants more from the submodule: import it as it is
        sys.modules.pop(_ANGULAR, None)
        import e3nn.o3  # noqa: F401

        return
    finally:
        if sys.modules.get(_ANGULAR) is placeholder:
            del sys.modules[_ANGULAR]
    if getattr(o3, "_angular_spherical_harmonics", None) is placeholder:
        del o3._angular_spherical_harmonics
    for name in _ANGULAR_NAMES:
        if name in o3.__dict__ and o3.__dict__[name] is None:
            del o3.__dict__[name]

    def __getattr__(name: str):  # PEP 562: called only for names the module does not have
        if name in _ANGULAR_NAMES:
            module = importlib.import_module(_ANGULAR)
            for deferred in _ANGULAR_NAMES:
                setattr(o3, deferred, getattr(module, deferred))
            return getattr(module, name)
        raise AttributeError(f"module 'e3nn.o3' has no attribute {name!r}")

    o3.__getattr__ = __getattr__


_MOMENTS: dict = {}
_LOCK = threading.RLock()  # constructions in several threads (a Dask screen) patch and restore one at a time


class _DeferredCode(torch.fx.GraphModule):
    """Stands for the fx code e3nn generates for a ``TensorProduct``; generates it on the first call.

    ``GraphModule.__init__`` (a code generation and a ``compile``) is deliberately skipped: e3nn only checks the
    type and registers the object as a submodule. The real code, built in float64 (e3nn computes its constants
    in the default dtype) and moved to the inputs' dtype and device, is kept outside the module tree.
    """

    def __init__(self, codegen, args: tuple) -> None:
        torch.nn.Module.__init__(self)
        self.__dict__["_codegen"] = (codegen, args)
        self.__dict__["_code"] = None

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        like = inputs[0]
        code = self.__dict__["_code"]
        if code is None:
            codegen, args = self.__dict__["_codegen"]
            previous = torch.get_default_dtype()
            torch.set_default_dtype(torch.float64)
            try:
                code = codegen(*args)
            finally:
                torch.set_default_dtype(previous)
        code = code.to(dtype=like.dtype, device=like.device)  # no copy when already there
        self.__dict__["_code"] = code
        return code(*inputs)

    def __repr__(self) -> str:
        return "_DeferredCode()"


@contextlib.contextmanager
def lean_construction() -> Iterator[None]:
    """e3nn modules built inside this context defer their code generation and share activation moments.

    See the module docstring. Only matsym's own construction should run inside it (it patches two e3nn module
    attributes for its duration).
    """
    with _LOCK:
        yield from _patched()


def _normal_samples(dtype, device) -> torch.Tensor:
    """The samples of ``e3nn.math.moment``: a million normal numbers drawn in float64 from a generator seeded 0,
    then cast; drawn once per (dtype, device) and shared by every function."""
    from e3nn.util.default_type import explicit_default_types

    dtype, device = explicit_default_types(dtype, device)
    key = ("samples", dtype, str(device))
    if key not in _MOMENTS:
        gen = torch.Generator(device=device).manual_seed(0)
        z = torch.randn(1_000_000, generator=gen, dtype=torch.float64, device=device)
        _MOMENTS[key] = z.to(dtype=dtype, device=device)
    return _MOMENTS[key]


# e3nn.math.moment(f, 2, torch.float64, cpu) of the activations matsym's networks use, as float.hex: the exact
# float64 results of the million-sample computation (test_lean_e3nn checks each against e3nn's own ``moment``
# bit for bit). Drawing the samples and evaluating the four functions took 55 ms (median of 5) of every search's
# start-up.
_KNOWN_MOMENTS = {
    ("torch.nn.functional.silu", 2): "0x1.6b2ae89a364e7p-2",
    ("torch._VariableFunctionsClass.sigmoid", 2): "0x1.2c43d4761ee87p-2",
    ("torch._VariableFunctionsClass.tanh", 2): "0x1.9326db187cdf7p-2",
    ("matsym.model._even_abs", 2): "0x1.8303c17fa73acp-1",
}


def _known_moment(f, n, dtype, device) -> torch.Tensor | None:
    """The tabulated moment of ``f`` (:data:`_KNOWN_MOMENTS`), or None where it is not tabulated."""
    from e3nn.util.default_type import explicit_default_types

    dtype, device = explicit_default_types(dtype, device)
    name = f"{getattr(f, '__module__', None)}.{getattr(f, '__qualname__', None)}"
    value = _KNOWN_MOMENTS.get((name, n))
    if value is None or dtype != torch.float64 or torch.device(device).type != "cpu":
        return None
    return torch.tensor(float.fromhex(value), dtype=torch.float64)


def _patched() -> Iterator[None]:
    import e3nn
    import e3nn.math._normalize_activation as normalize
    import e3nn.o3._tensor_product._tensor_product as tp_module

    original_moment = normalize.moment

    def moment(f, n, dtype=None, device=None):
        key = (f, n, dtype, str(device))
        if key not in _MOMENTS:
            known = _known_moment(f, n, dtype, device)
            _MOMENTS[key] = known if known is not None else f(_normal_samples(dtype, device)).pow(n).mean()
        return _MOMENTS[key]

    providers = getattr(tp_module, "_CODEGEN_PROVIDERS_LEFT_RIGHT", [])  # e3nn 0.6; older ones: build as usual
    defer = e3nn.get_optimization_defaults().get("jit_mode") == "eager" and len(providers) > 0
    real = providers[0] if defer else None

    def deferred(*args):
        return _DeferredCode(real, args)

    normalize.moment = moment
    if defer:
        providers.insert(0, deferred)
    try:
        yield
    finally:
        normalize.moment = original_moment
        if defer:
            providers.remove(deferred)
