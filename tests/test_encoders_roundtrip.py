"""Round trips of the structure encoders the writer uses.

``decode(encode(x)) == x`` for generated attributes, experiment loops and
picture metadata: each encoder lives beside its decoder and must invert it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nd2
from builders import build_nd2
from nd2 import structures as s
from nd2.metadata import lite_variant as lv
from nd2.metadata.attributes import attribute_items, decode_attributes
from nd2.metadata.experiment import decode_experiment, experiment_items
from nd2.metadata.payload import decode_to_dict, root_level
from nd2.metadata.picture import MODALITY_BITS
from nd2.metadata.picture_encode import picture_items

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
positive = st.floats(0.001, 1e4, allow_nan=False, allow_infinity=False)
names = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)


def decoded_root(items: list[lv.Item]) -> dict:
    return dict(root_level(decode_to_dict(lv.encode(items), "test")))


# ----------------------------------------------------------------- attributes
@st.composite
def attributes(draw: st.DrawFn) -> s.Attributes:
    bits = draw(st.sampled_from([8, 16, 32]))
    pixel_type = draw(st.sampled_from(["unsigned", "float"])) if bits == 32 else "unsigned"
    comp = draw(st.integers(1, 6))
    width = draw(st.integers(1, 5000))
    row = width * comp * bits // 8
    compression = draw(st.sampled_from([None, "lossless"]))
    return s.Attributes(
        bitsPerComponentInMemory=bits,
        bitsPerComponentSignificant=draw(st.integers(1, bits)),
        componentCount=comp,
        heightPx=draw(st.integers(1, 5000)),
        pixelDataType=pixel_type,  # type: ignore[arg-type]
        sequenceCount=draw(st.integers(0, 10**6)),
        widthBytes=row + draw(st.integers(0, 7)),
        widthPx=width,
        compressionLevel=0.0 if compression else None,
        compressionType=compression,  # type: ignore[arg-type]
        channelCount=comp,
    )


@SETTINGS
@given(attributes())
def test_attributes_round_trip(attrs: s.Attributes) -> None:
    raw = decoded_root(attribute_items(attrs))
    assert decode_attributes(raw, attrs.channelCount) == attrs


# ----------------------------------------------------------------- experiment
def _period(draw: st.DrawFn, count: int) -> s.TimeLoopParams:
    return s.TimeLoopParams(
        startMs=draw(finite),
        periodMs=draw(positive),
        durationMs=draw(finite),
        periodDiff=s.PeriodDiff(avg=draw(finite), max=draw(finite), min=draw(finite)),
    )


@st.composite
def loop(draw: st.DrawFn, kind: str, level: int) -> s.ExpLoop:
    count = draw(st.integers(1, 6))
    if kind == "T":
        return s.TimeLoop(count, level, _period(draw, count))
    if kind == "NT":
        periods = []
        for _ in range(draw(st.integers(1, 3))):
            n = draw(st.integers(1, 4))
            periods.append(s.Period(**vars(_period(draw, n)), count=n))
        total = sum(p.count for p in periods)
        return s.NETimeLoop(total, level, s.NETimeLoopParams(periods))
    if kind == "P":
        points = [
            s.Position(
                s.StagePosition(draw(finite), draw(finite), draw(st.none() | finite)),
                pfsOffset=draw(st.none() | finite),
                name=draw(st.none() | names.filter(bool)),
            )
            for _ in range(count)
        ]
        return s.XYPosLoop(count, level, s.XYPosLoopParams(draw(st.booleans()), points))
    if kind == "Z":
        params = s.ZStackLoopParams(
            homeIndex=draw(st.integers(0, count - 1)),
            stepUm=draw(st.floats(0.01, 100, allow_nan=False)),
            bottomToTop=draw(st.booleans()),
            deviceName=draw(st.none() | names),
        )
        return s.ZStackLoop(count, level, params)
    return s.CustomLoop(count, level)


@st.composite
def experiments(draw: st.DrawFn) -> list[s.ExpLoop]:
    kinds = draw(st.lists(st.sampled_from(["T", "NT", "P", "Z", "U"]), max_size=4, unique=True))
    if "T" in kinds and "NT" in kinds:
        kinds.remove("NT")
    return [draw(loop(kind, level)) for level, kind in enumerate(kinds)]


@SETTINGS
@given(experiments())
def test_experiment_round_trip(loops: list[s.ExpLoop]) -> None:
    decoded = decode_experiment(decoded_root(experiment_items(loops)))
    assert len(decoded) == len(loops)
    for got, want in zip(decoded, loops):
        if isinstance(want, s.ZStackLoop):
            # the step is stored as its absolute value; the home index exactly
            assert math.isclose(got.parameters.stepUm, want.parameters.stepUm)  # type: ignore[union-attr]
            assert got.parameters.homeIndex == want.parameters.homeIndex  # type: ignore[union-attr]
            assert got.parameters.bottomToTop == want.parameters.bottomToTop  # type: ignore[union-attr]
            assert got.parameters.deviceName == want.parameters.deviceName  # type: ignore[union-attr]
            assert (got.count, got.nestingLevel) == (want.count, want.nestingLevel)
        else:
            assert got == want


# -------------------------------------------------------------------- picture
MODALITIES = [name for _, name in MODALITY_BITS]


@st.composite
def metadata(draw: st.DrawFn) -> s.Metadata:
    n = draw(st.integers(1, 4))
    rgb = draw(st.booleans()) and n == 1
    pixel = draw(st.none() | positive)
    flags = sorted(
        set(draw(st.lists(st.sampled_from(["fluorescence", "brightfield"]), min_size=1)))
        | set(draw(st.lists(st.sampled_from(MODALITIES[2:]), max_size=3))),
        key=MODALITIES.index,
    )
    microscope = s.Microscope(
        objectiveMagnification=draw(st.none() | positive),
        objectiveName=draw(st.none() | names.filter(bool)),
        objectiveNumericalAperture=draw(st.none() | positive),
        immersionRefractiveIndex=draw(st.none() | positive),
        modalityFlags=flags,  # type: ignore[arg-type]
    )
    channels = []
    for i in range(n):
        color = s.Color(*draw(st.tuples(*[st.integers(0, 255)] * 3)))
        channels.append(
            s.Channel(
                channel=s.ChannelMeta(
                    name=draw(names),
                    index=i,
                    color=color,
                    emissionLambdaNm=None if rgb else draw(st.none() | positive),
                    excitationLambdaNm=None if rgb else draw(st.none() | positive),
                ),
                loops=None,
                microscope=microscope,
                volume=s.Volume(
                    axesCalibrated=(pixel is not None, pixel is not None, False),
                    axesCalibration=(pixel or 1.0, pixel or 1.0, 1.0),
                    axesInterpretation=("distance", "distance", "distance"),
                    bitsPerComponentInMemory=8 if rgb else 16,
                    bitsPerComponentSignificant=8 if rgb else 16,
                    cameraTransformationMatrix=(1.0, 0.0, 0.0, 1.0),
                    componentCount=3 if rgb else 1,
                    componentDataType="unsigned",
                    voxelCount=(40, 30, 1),
                    componentMaxima=[0.0] * (3 if rgb else 1),
                    componentMinima=[0.0] * (3 if rgb else 1),
                ),
            )
        )
    return s.Metadata(s.Contents(n, 1), channels)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(meta=metadata())
def test_picture_metadata_round_trip(tmp_path_factory, meta: s.Metadata) -> None:  # type: ignore[no-untyped-def]
    channels = meta.channels or []
    rgb = channels[0].volume.componentCount == 3
    shape = (30, 40, 3) if rgb else (len(channels), 30, 40)
    dtype = np.uint8 if rgb else np.uint16
    path = Path(tmp_path_factory.mktemp("pic")) / "pic.nd2"
    build_nd2(path, np.zeros(shape, dtype), rgb=rgb, picture=picture_items(meta))
    with nd2.ND2File(path) as f:
        got = f.metadata
    if rgb:  # colour channels carry the pseudo wavelengths every reader gives them
        for ch in channels:
            ch.channel.emissionLambdaNm = ch.channel.excitationLambdaNm = 420.0
    assert got == meta
