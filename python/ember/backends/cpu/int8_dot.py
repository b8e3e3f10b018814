"""The integer dot product of the CPU int8 GEMM kernel, chosen from the target's features.

The int8 micro-kernel (ember.backends.cpu.microkernel with an int8 spec) keeps
vector<lanes x i32> accumulators; one k step multiplies 4 activation bytes (one i32 word,
broadcast) by the 4 weight bytes of each column (one word per lane) and adds the 4 products
into the column's lane. Which instruction does that, and so which byte encoding the
activations must have (ember.quant.schemes), depends on the CPU:

    vnni512    x86 AVX-512 VNNI      vpdpbusd zmm      u8 x s8, 16 lanes
    vnni256    x86 AVX-VNNI (or AVX-512 VNNI + VL at 256 bits)  vpdpbusd ymm, 8 lanes
    maddubs512 x86 AVX-512BW         vpmaddubsw + vpmaddwd (u7 x s8: no int16 saturation)
    maddubs256 x86 AVX2              vpmaddubsw + vpmaddwd ymm
    sdot       AArch64 +dotprod      sdot (s8 x s8), 4 lanes (with +i8mm the tiles run on
                                     smmla, ember.backends.cpu.mmla_tiles, sdot for odd rows)
    portable   anything else         bytes sign-extended by shifts, multiplied in i32

An integer GEMM (i16 x i16 into i32, ember.gemm; a Winograd int8 conv's products) has words of
two i16 instead (`int16_dot_for`): vpmaddwd, or the halves sign-extended and multiplied.

ember-pack-weights asks `int8_dot_for(target)` for the encoding it packs the compensation for;
ember-cpu-gemm-kernels asks again for the instruction, so both always agree.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from mlir import ir
from mlir.dialects import arith, llvm, vector

from ember.kit.builders import constant
from ember.kit.scalar_math import signed_byte
from ember.pipeline.target_info import TargetInfo


@dataclass(frozen=True)
class WordDot:
    """One way to compute `acc[l] += sum_j a_part[j] * b_part[l][j]` over lanes of 32-bit
    words: 4 bytes each (i32 accumulators), 2 i16 (i32 ones, `int16_dot_for`), or 2 bf16 (f32
    ones, ember.backends.cpu.bf16_dot)."""
    name: str
    encoding: str           # the activations' encoding (ember.quant.schemes.ENCODINGS; "bf16",
                            # "s16" for i16 pairs)
    lanes: int              # i32 lanes per accumulator
    emit: Callable          # (acc, a broadcast word vector, b word vector) -> acc
    temporaries: int = 0    # vector registers its intermediates take (vpmaddubsw's: the
                            # i16 products and vpmaddwd's constant 1s; counting only one
                            # spilled accumulators of the CNN's AVX2 convs: 1.04x -> 1.15x)

    def __call__(self, a, b, acc):
        return self.emit(acc, a, b)


def _bytes(value, lanes: int):
    return vector.bitcast(ir.VectorType.get([4 * lanes], ir.IntegerType.get_signless(8)), value)


def _intrinsic(name: str, result_type, *args):
    return llvm.call_intrinsic(result_type, name, list(args), [], [])


def _vpdpbusd(lanes: int):
    name = f"llvm.x86.avx512.vpdpbusd.{32 * lanes}"

    def emit(acc, a, b):
        return _intrinsic(name, acc.type, acc, _bytes(a, lanes), _bytes(b, lanes))
    return emit


def _maddubs(lanes: int):
    """vpmaddubsw (u7 x s8 pairs -> i16, exact for 7-bit activations) then vpmaddwd by 1."""
    suffix = {8: ("llvm.x86.avx2.pmadd.ub.sw", "llvm.x86.avx2.pmadd.wd"),
              16: ("llvm.x86.avx512.pmaddubs.w.512", "llvm.x86.avx512.pmaddw.d.512")}[lanes]

    def emit(acc, a, b):
        i16 = ir.VectorType.get([2 * lanes], ir.IntegerType.get_signless(16))
        pairs = _intrinsic(suffix[0], i16, _bytes(a, lanes), _bytes(b, lanes))
        quads = _intrinsic(suffix[1], acc.type, pairs, constant(1, i16))
        return arith.addi(acc, quads)
    return emit


def _pmaddwd(lanes: int):
    """vpmaddwd: the two i16 products of each word pair summed into i32, then added."""
    name = {8: "llvm.x86.avx2.pmadd.wd", 16: "llvm.x86.avx512.pmaddw.d.512"}[lanes]

    def emit(acc, a, b):
        halves = ir.VectorType.get([2 * lanes], ir.IntegerType.get_signless(16))
        return arith.addi(acc, _intrinsic(name, acc.type, vector.bitcast(halves, a),
                                          vector.bitcast(halves, b)))
    return emit


def _portable_pairs(acc, a, b):
    """The two i16 halves of each word pair, sign-extended and multiplied in i32."""
    sixteen = constant(16, acc.type)

    def low(word):
        return arith.shrsi(arith.shli(word, sixteen), sixteen)
    acc = arith.addi(acc, arith.muli(low(a), low(b)))
    return arith.addi(acc, arith.muli(arith.shrsi(a, sixteen), arith.shrsi(b, sixteen)))


def int16_dot_for(info: TargetInfo) -> WordDot:
    """The dot product of an integer GEMM's kernel (i16 pairs into i32 lanes) on `info`:
    vpmaddwd (AVX-512BW, AVX2: 2 multiply-adds per lane, the rate of vpmaddubsw's second
    step) or the portable one."""
    flags, lanes = info.enabled_features, info.vector_lanes
    if not info.triple.startswith(("aarch64", "arm64")):
        if lanes == 16 and "avx512bw" in flags:
            return WordDot("pmaddwd512", "s16", 16, _pmaddwd(16), temporaries=1)
        if lanes == 8 and "avx2" in flags:
            return WordDot("pmaddwd256", "s16", 8, _pmaddwd(8), temporaries=1)
    return WordDot("portable16", "s16", lanes, _portable_pairs, temporaries=3)


def _sdot(acc, a, b):
    return _intrinsic("llvm.aarch64.neon.sdot.v4i32.v16i8", acc.type, acc, _bytes(a, 4),
                      _bytes(b, 4))


def _portable(acc, a, b):
    """The four byte products of each word pair, sign-extended and multiplied in i32."""
    for j in range(4):
        acc = arith.addi(acc, arith.muli(signed_byte(a, j), signed_byte(b, j)))
    return acc


def int8_dot_for(info: TargetInfo, encoding: Optional[str] = None) -> WordDot:
    """The dot product the int8 kernels of `info` use, at its vector width (vector_lanes):
    the fastest there is, or the fastest reading `encoding` (a kernel on static codes, which
    need all 8 bits, is packed for `full_range_encoding(info)`)."""
    best = _fastest_dot(info)
    if encoding is None or encoding == best.encoding:
        return best
    if encoding == "s8":
        return _portable_dot(info.vector_lanes)
    raise ValueError(f"no int8 dot product of this target reads {encoding} activations "
                     f"(its own reads {best.encoding})")


def full_range_encoding(info: TargetInfo) -> str:
    """The encoding kernels on full 8-bit codes (static quantization) are packed for: the
    fastest dot product's where it reads 8 bits, else s8 (the portable product; vpmaddubsw's
    int16 sums would saturate on full-range u8 codes)."""
    best = _fastest_dot(info)
    return best.encoding if best.encoding in ("u8", "s8") else "s8"


def _portable_dot(lanes: int) -> WordDot:
    return WordDot("portable", "s8", lanes, _portable, temporaries=3)


def _fastest_dot(info: TargetInfo) -> WordDot:
    flags, lanes = info.enabled_features, info.vector_lanes
    if info.triple.startswith(("aarch64", "arm64")):
        return WordDot("sdot", "s8", 4, _sdot) if "dotprod" in flags else _portable_dot(lanes)
    if lanes == 16 and "avx512vnni" in flags:
        return WordDot("vnni512", "u8", 16, _vpdpbusd(16))
    if lanes == 8 and ("avxvnni" in flags or {"avx512vnni", "avx512vl"} <= flags):
        return WordDot("vnni256", "u8", 8, _vpdpbusd(8))
    if lanes == 16 and "avx512bw" in flags:
        return WordDot("maddubs512", "u7", 16, _maddubs(16), temporaries=2)
    if lanes == 8 and "avx2" in flags:
        return WordDot("maddubs256", "u7", 8, _maddubs(8), temporaries=2)
    return _portable_dot(lanes)
