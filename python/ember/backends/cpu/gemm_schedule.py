"""Choosing the CPU GEMM kernel's schedule (register tile, cache blocks, thread split) for one
spec on one CPU, and the panel width the weights are packed for.

Every choice is a function of the kernel's spec and the target's `CpuTraits` (vector lanes and
registers, cache sizes, cores); ember-cpu-gemm-kernels lets its options override any of them
and records the schedule it used on the kernel (`GemmSchedule.attr`).
"""
from __future__ import annotations

import math

from ember.kit.gemm_kernel_spec import GemmKernelSpec
from ember.backends.cpu.microkernel import CpuTraits, GemmSchedule

#: Packing A pays off when the packed block is reused for at least this many panels: packing
#: costs about one load and store per element, as much as a panel's FMAs on it (measured on
#: the CNN's convolutions, N = 32 and 64: reading A in place was 7% faster end to end).
PACK_A_MIN_PANELS = 4
#: A patch lhs with fewer channels than this is packed whatever N: its rows are runs of C
#: floats per filter tap, too short for the micro-kernel's unrolled k loop (the CNN's RGB stem,
#: C = 3, N = 32: 5.0% -> 2.6% of the samples; at C = 32 packing was slower).
PACK_A_PATCH_CHANNELS = 8
#: A kernel of at most this many (static) rows is a GEMV, a decode step's GEMM: it reads each
#: weight once, so it takes all of K in one block and every panel streams contiguously (K
#: blocks of 512 made a 4-bit panel 8 KiB runs 64 KiB apart, which the prefetcher did not
#: follow: the decode stack's int4 step 2.5 -> 1.6 ms, int8 4.0 -> 1.7 ms, Zen 4, 2 threads).
GEMV_ROWS = 4
#: Rows of an AVX-512 int8 kernel's register tile at most: its tile reads each row of A in
#: place (one stream per row, where an f32 kernel reads a packed block), and 10 rows beat the
#: 14 the registers allow (Zen 4, 2 threads: the MLP block's two qgemms 1.48 -> 1.39 ms, the
#: BERT encoder's QKV qgemm 0.77 -> 0.61 ms and FFN1 1.11 -> 0.98 ms, the CNN's stride-2 3x3
#: conv 0.50 -> 0.40 ms; 8 and 6 rows no better). Narrower vectors keep the registers' bound
#: (AVX2's is 5 rows; AArch64's 14, or 12 on smmla, unmeasured on hardware).
INT8_ROWS = 10
#: k steps per inner-loop iteration of the micro-kernel.
UNROLL = 4
#: ... of an int8 kernel reading a conv's patches in place, one step: each of its MR rows has
#: its own input pixel pointer, and with 4 steps LLVM hoisted 4 x MR broadcasts ahead of the
#: dot products and spilled them (the CNN's 32-channel 3x3 convs, Zen 4: 1.9 -> 0.8 ms; the
#: whole static int8 CNN 7.5 -> 5.5 ms). Kernels of plain rows keep UNROLL (one step there
#: was 10% slower).
PATCH_INT8_UNROLL = 1
#: A patch kernel's tile takes a divisor of the output row's width as its rows when that
#: divisor is at least this share of the rows the registers allow (8 of 10 at OW = 16, 32 and
#: 64: the CNN's VNNI convolutions, 10 rows and tails of 4 and 2 -> 8 rows, 0.91x end to end,
#: AVX-512 VNNI on Emerald Rapids, 2 threads).
OUTPUT_ROW_SHARE = 2 / 3
#: An f32 C written in one K block and larger than this share of the L3 (1/8: the share one
#: core of a busy, shared L3 keeps) is stored non-temporally: it would not stay cached for
#: its reader, and streaming stores skip the read for ownership of every line (BERT at batch
#: 256, whose QKV and FFN1 write 96 and 128 MiB a layer on Emerald Rapids' 300 MiB L3:
#: 0.85x end to end, AMX, 2 threads).
STREAM_C_SHARE = 8


def _output_row_tiles(spec: GemmKernelSpec, mr: int) -> int:
    """The register tile's rows for an int8 kernel reading a convolution's patches in place,
    whose tiles each lie in one output row (so an output row of OW pixels runs as MR-row tiles
    and then power-of-two tails): the largest divisor of OW up to `mr` where it is at least
    OUTPUT_ROW_SHARE of `mr` (no tails: a 2- or 4-row tail has too few accumulators to hide
    the dot product's latency, and streams the panel again), else `mr`."""
    if not spec.int8 or spec.patches is None:
        return mr
    ow = spec.patch_output[1]
    divisor = max(r for r in range(1, mr + 1) if ow % r == 0)
    return divisor if divisor >= OUTPUT_ROW_SHARE * mr else mr


def default_panel(traits: CpuTraits) -> int:
    """The packed panel width NR for a target: two vector registers."""
    return 2 * traits.lanes


def choose_schedule(spec: GemmKernelSpec, traits: CpuTraits, **overrides) -> GemmSchedule:
    """A schedule for `spec` on `traits`; a field given in `overrides` (not None, not 0) wins.
    `temporaries` (an override too) are vector registers the multiply-add needs besides the
    tile (an int8 dot product's intermediates).

    MR: as many rows as the vector registers hold (accumulators + the panel's vectors + one
    broadcast; at most `INT8_ROWS` in an AVX-512 int8 kernel), at most M's (a static M below
    it packs A's rows densely, not MR apart: a GEMV read one float per 56 bytes of packed A).
    KC: L1d / (2 NR) (512 on a 32 KiB L1 with NR = 32; on Zen 4, 512 measured faster than the
    L1-resident 128, since the reloads of C per K block cost more than streaming the panel
    from L2), balanced over K; int8 kernels take all of K in one block
    (their partial sums are integers, C holds floats), and so do GEMVs (`GEMV_ROWS`). MC: the
    packed A block fills at most half of L2 and 256 KiB (it lives on the stack of an OpenMP
    worker). Unroll: `UNROLL`, or `PATCH_INT8_UNROLL` for an int8 kernel of patches.
    """
    def given(key):
        value = overrides.pop(key, None)
        return None if value in (None, 0) else value
    lanes = given("lanes") or math.gcd(traits.lanes, spec.nr)
    vectors = max(1, spec.nr // lanes)
    temporaries = overrides.pop("temporaries", 0)
    mr = given("mr") or _output_row_tiles(spec, max(1, min(
        INT8_ROWS if spec.int8 and traits.lanes >= 16 else 14,
        (traits.registers - vectors - 1 - temporaries) // vectors, spec.m or 14)))
    gemv = spec.m is not None and spec.m <= GEMV_ROWS
    unroll = given("unroll") or (PATCH_INT8_UNROLL if spec.int8 and spec.patches is not None
                                 else UNROLL)
    kc = spec.k if spec.int8 or (gemv and not overrides.get("kc")) else given("kc")
    # K blocks of a patch lhs hold whole filter taps (C channels each): the kernel walks a
    # block tap by tap, reading C contiguous channels of one input pixel per tap. Those of
    # low-bit codes hold whole groups (one scale vector per group and panel).
    unit = spec.group if spec.low_bit else 1 if spec.patches is None else spec.tap_k
    if kc is None:
        kc_max = max(16, traits.l1d // (2 * spec.nr))
        units = spec.k // unit
        kc = -(-units // -(-units // max(1, kc_max // unit))) * unit
    else:
        kc = -(-kc // unit) * unit
    kc = min(kc, spec.k)
    mc = given("mc")
    if mc is None:
        mc = max(mr, min(traits.l2 // 2, 256 * 1024) // (kc * 4) // mr * mr)
        if spec.m is not None:
            mc = min(mc, -(-spec.m // mr) * mr)
    chosen = dict(lanes=lanes, mr=mr, nr=spec.nr, kc=kc, mc=mc, unroll=unroll,
                  parallel=traits.cores > 1,
                  stream_c=kc >= spec.k and spec.m is not None and not spec.batch and
                  spec.m * spec.n * 4 > traits.l3 // STREAM_C_SHARE,
                  pack_a=spec.panels >= PACK_A_MIN_PANELS or (
                      spec.patches is not None and spec.tap_k < PACK_A_PATCH_CHANNELS))
    for key, value in overrides.items():
        if value is not None and (value != 0 or isinstance(value, bool)):
            chosen[key] = value
    schedule = GemmSchedule(**chosen)
    if schedule.nr % schedule.lanes:
        raise ValueError(f"panel width {schedule.nr} is not a multiple of {schedule.lanes} lanes")
    return schedule
