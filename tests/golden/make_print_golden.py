#!/usr/bin/python3
"""Generate tests/golden/print_cases.json for tests/core/test_print.c.

Run with Debian 12's numpy 1.24 (the interpreter at /usr/bin/python3):

    /usr/bin/python3 tests/golden/make_print_golden.py

Each case records the array as exact data (floats as hex bit patterns, integers
as decimal strings, so nothing is rounded through JSON) together with:

  str   numpy's str(a): array2string with separator ' ' (for a 0-d array, the
        str of the numpy scalar, which ignores the print options);
  repr  JAX's Array.__repr__, computed here from numpy's array2string with the
        formula in jax/_src/array.py (see jax_repr below).

A case may carry "options" (precision, linewidth, threshold, edgeitems); both
strings are then computed under np.printoptions(**options), which is what
gv_print_options models, and cross-checked against np.array2string called
with the same values as explicit arguments.
"""
import json
import os
import sys

import numpy as np

assert np.__version__.startswith("1.24"), "golden strings are for numpy 1.24"

F32, F64 = np.float32, np.float64
DEFAULTS = dict(precision=8, linewidth=75, threshold=1000, edgeitems=3)


def jax_repr(a):
    """JAX's Array.__repr__ (jax/_src/array.py) for a fully addressable array.

    Note sep is six spaces, not a newline: when "dtype=..." would overflow the
    last line, JAX keeps it on that line after len('Array(') spaces.
    """
    prefix = "Array("
    dtype_str = f"dtype={a.dtype.name})"
    line_width = np.get_printoptions()["linewidth"]
    if a.size == 0:
        s = f"[], shape={a.shape}"
    else:
        s = np.array2string(a, prefix=prefix, suffix=",", separator=", ",
                            max_line_width=line_width)
    last_line_len = len(s) - s.rfind("\n") + 1
    sep = " "
    if last_line_len + len(dtype_str) + 1 > line_width:
        sep = " " * len(prefix)
    return f"{prefix}{s},{sep}{dtype_str}"


def encode(a):
    flat = a.reshape(-1)
    if a.dtype == np.float32:
        return [format(int(v), "08x") for v in flat.view(np.uint32)]
    if a.dtype == np.float64:
        return [format(int(v), "016x") for v in flat.view(np.uint64)]
    if a.dtype == np.bool_:
        return ["1" if v else "0" for v in flat]
    return [str(int(v)) for v in flat]


CASES = []


def case(name, a, **options):
    a = np.asarray(a)
    assert a.dtype.name in ("bool", "uint8", "uint16", "uint32", "uint64",
                            "int32", "int64", "float32", "float64"), a.dtype
    opts = dict(DEFAULTS, **options)
    with np.printoptions(**opts):
        s, r = str(a), jax_repr(a)
    # the same through explicit array2string arguments (what the C API takes)
    if a.ndim > 0 and a.size > 0:
        explicit = np.array2string(a, max_line_width=opts["linewidth"],
                                   precision=opts["precision"],
                                   threshold=opts["threshold"],
                                   edgeitems=opts["edgeitems"])
        assert explicit == s, (name, explicit, s)
    entry = {"name": name, "dtype": a.dtype.name, "shape": list(a.shape),
             "data": encode(a), "repr": r, "str": s}
    if options:
        entry["options"] = options
    CASES.append(entry)


def f32bits(*bits):
    return np.array(bits, np.uint32).view(np.float32)


nan, inf = float("nan"), float("inf")
rng = np.random.default_rng(1234)

# --- rank 0: repr goes through array2string, str through the numpy scalar
case("scalar_f32_one", np.array(1.0, F32))
case("scalar_f32_pi", np.array(np.pi, F32))
case("scalar_f32_tenth", np.array(0.1, F32))
case("scalar_f32_1e-4", np.array(1e-4, F32))          # just below 1e-4: scientific
case("scalar_f32_1e16", np.array(1e16, F32))
case("scalar_f32_neg_zero", np.array(-0.0, F32))
case("scalar_f32_nan", np.array(nan, F32))
case("scalar_f32_neg_inf", np.array(-inf, F32))
case("scalar_f64_17_digits", np.array(0.1 + 0.2, F64))
case("scalar_f64_1.5e-5", np.array(1.5e-5, F64))
case("scalar_f64_big_int", np.array(123456789012345.0, F64))
case("scalar_i32", np.array(-7, np.int32))
case("scalar_u64_max", np.array(2**64 - 1, np.uint64))
case("scalar_bool", np.array(True))

# --- small positional arrays
case("f32_1d_small", np.array([1.0, 2.0, 3.0], F32))
case("f32_1d_single", np.array([2.5], F32))
case("f32_1d_halves", np.array([0.5, 1.25, -3.75], F32))
case("f32_tenths", np.array([0.1, 0.2, 0.3], F32))
case("f32_2d", np.array([[1.0, 2.5, -3.0], [4.0, 5.125, 6.0]], F32))
case("f32_3d", np.arange(24, dtype=F32).reshape(2, 3, 4) / 4)
case("i32_4d", np.arange(24, dtype=np.int32).reshape(2, 2, 2, 3) - 10)
case("f64_5d", np.array([0.5, -1.0], F64).reshape(1, 1, 1, 1, 2))
case("f64_eight_decimals", np.array([1 / 3, 2 / 3, 0.12345678912, 10.0], F64))
case("f64_17_digits", np.array([0.1 + 0.2, 1.2345678901234567, 2.0], F64))
case("f32_negative", np.array([-1.5, 2.25, -100.125, 7.0], F32))
case("f32_integers", np.array([1.0, 2.0, 3.0, 100.0], F32))
case("f32_zeros_and_neg_zero", np.array([-0.0, 0.0, -0.0], F32))
case("f32_randn_4x8", rng.standard_normal((4, 8)).astype(F32))
case("f64_randn_3x5", rng.standard_normal((3, 5)))

# --- scientific notation: tiny, huge, large ratio, 3-digit exponents
case("f32_sci_tiny", np.array([1e-5, 1.0, 2.5], F32))
case("f32_sci_huge", np.array([1e8, 1.0, -3.5], F32))
case("f32_sci_ratio", np.array([1.0, 1001.0], F32))
case("f32_ratio_rounds_to_1000", f32bits(0x3F830C20, 0x447FF3AF))   # ratio in float32 == 1000
case("f32_sci_mixed", np.array([0.1, 1000.1, -2e-3], F32))
case("f64_sci_exp3", np.array([1e-100, 1.0, -2.5e200], F64))
case("f64_sci_17_digits", np.array([1e-5, 0.1 + 0.2, 1 / 3], F64))
case("f32_powers_of_two", np.array([2.0**-20, 2.0**24, 2.0**60], F32))
case("f32_subnormal_and_max", np.array([1e-45, 1.0, np.finfo(F32).max], F32))
case("f64_subnormal_and_max", np.array([5e-324, -1.0, np.finfo(F64).max], F64))
case("f32_large_positional", np.array([9999999.0, 0.5, 123.25], F32))

# --- non-finite values
case("f32_specials", np.array([-0.0, nan, inf, -inf, 1.5], F32))
case("f32_specials_sci", np.array([nan, 1e-7, inf, 3.0], F32))
case("f64_nan_inf_only", np.array([nan, inf], F64))
case("f64_all_nan", np.array([nan, nan, nan], F64))
case("f32_inf_wide", np.array([[inf, 0.5], [2.0, -inf]], F32))

# --- line wrapping
case("f32_wrap_30", np.linspace(0, 1, 30, dtype=F32))
case("f64_wrap_3x20", (np.arange(60, dtype=F64).reshape(3, 20) * 1.1))
case("f32_dtype_spills", np.linspace(-1, 1, 10, dtype=F32))
case("i64_wrap_3x12", (np.arange(36, dtype=np.int64).reshape(3, 12) - 18) * 123456789)

# --- summarisation (size > threshold)
case("f32_summary_2000", np.arange(2000, dtype=F32) * 0.5)
case("f64_summary_40x40", rng.standard_normal((40, 40)))
case("i32_summary_12x12x12", np.arange(1728, dtype=np.int32).reshape(12, 12, 12))
case("bool_summary_1001", np.arange(1001) % 3 == 0)

# --- zero-size arrays
case("f32_empty", np.zeros((0,), F32))
case("i32_empty_2x0", np.zeros((2, 0), np.int32))
case("f64_empty_0x3x2", np.zeros((0, 3, 2), F64))

# --- integer dtypes
case("u8", np.array([0, 255, 7, 128], np.uint8))
case("u16", np.array([[0, 65535], [1, 300]], np.uint16))
case("u32", np.array([0, 4294967295, 42], np.uint32))
case("u64", np.array([0, 2**64 - 1, 12345678901234567890, 1], np.uint64))
case("i32", np.array([-2147483648, 0, 2147483647, -1], np.int32))
case("i64", np.array([-2**63, 0, 2**63 - 1, -5], np.int64))
case("i64_small", np.array([[1, -2], [30, 4]], np.int64))

# --- bool
case("bool_all_true", np.array([True, True, True]))
case("bool_mixed_2d", np.array([[True, False], [False, True]]))
case("bool_all_false", np.array([False, False]))

# --- print options
case("opt_precision_4", np.array([np.pi, -np.e, 1 / 3], F64), precision=4)
case("opt_precision_4_sci", np.array([1e-6, np.pi, 12345.678], F32), precision=4)
case("opt_precision_2_rounds_to_zero", np.array([0.001, 0.5, 0.004], F64), precision=2)
case("opt_precision_0", np.array([0.5, 1.5, 2.5, 12.7], F64), precision=0)
case("opt_linewidth_40", np.arange(24, dtype=F32).reshape(3, 8) / 3, linewidth=40)
case("opt_linewidth_40_1d", np.linspace(0, 5, 12, dtype=F64), linewidth=40)
case("opt_threshold_10", np.arange(20, dtype=np.int32), threshold=10)
case("opt_threshold_big", np.arange(1200, dtype=np.int32), threshold=5000)
case("opt_edgeitems_1", np.arange(60, dtype=F32).reshape(3, 4, 5), threshold=10,
     edgeitems=1)
case("opt_edgeitems_0", np.arange(10, dtype=F64), threshold=5, edgeitems=0)
case("opt_threshold_0_scalar", np.array(2.5, F32), threshold=0)
case("opt_all", np.arange(30, dtype=F64).reshape(5, 6) / 7, precision=3, linewidth=30,
     threshold=20, edgeitems=2)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "print_cases.json")
with open(out, "w") as f:
    json.dump(CASES, f, indent=1)
    f.write("\n")
print(f"wrote {len(CASES)} cases to {out}", file=sys.stderr)
