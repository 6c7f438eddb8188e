"""Experiment events: what an event means, its stimulation, and the event itself.

The events of an acquisition (chunks ``ImageEventsLV!``, ``ImageEvents!`` and
``CustomData|ExperimentEventsV1_0!``, format document section 9.13) carry a
meaning code (appendix A.3) and, for stimulations, a stimulation type.  These
classes are re-exported by :mod:`nd2.structures`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

__all__ = ["EventMeaning", "ExperimentEvent", "StimulationEvent", "StimulationType"]


class EventMeaning(IntEnum):
    """What an experiment event records (``M`` of an event, format document A.3)."""

    Unspecified = 0
    Autofocus = 1
    UserInteraction1_Old = 2
    UserInteraction2_Old = 3
    UserInteraction3_Old = 4
    UserInteraction4_Old = 5
    JOBs = 6
    Command = 7
    Macro = 8
    Pause = 9
    Resume = 10
    Cancel = 11
    RAMGrabZeroTime = 12
    TimeLoopNextPhase = 13
    Refocus = 14
    Stimulation = 15
    ExternalStimulation = 16
    ExperimentStart = 17
    ExperimentEnd = 18
    PhaseXStart = 19
    PhaseXEnd = 20
    BeforeXYMove = 21
    AfterXYMove = 22
    BeforeZSeries = 23
    AfterZSeries = 24
    BeforeLambdaLoop = 25
    AfterLambdaLoop = 26
    BeforeLargeImage = 27
    AfterLargeImage = 28
    BeforeStimulation = 29
    AfterStimulation = 30
    UserEvents = 31
    StreamData = 32
    UserInteraction1 = 33
    UserInteraction2 = 34
    UserInteraction3 = 35
    UserInteraction4 = 36
    UserInteraction5 = 37
    UserInteraction6 = 38
    UserInteraction7 = 39
    UserInteraction8 = 40
    BeforeCapture = 41
    AfterCapture = 42
    RealTimeTTLData = 43
    NoAcquisitionStart = 44
    NoAcquisitionEnd = 45
    HardwareError = 46
    StormEvent = 47
    IncubationInfo = 48
    IncubationError = 49
    InteractiveExpEnd = 50
    ExperimentPause = 51
    WIDReplenishmentStart = 52
    WIDReplenishmentEnd = 53
    NSTORM = 54
    EventCount = 55

    def description(self) -> str:
        """The text NIS-Elements shows for an event without a description of its own.

        Empty for the markers of loops, phases and stimulation (17-32, 43) and
        for ``EventCount``.
        """
        return _EVENT_DESCRIPTIONS.get(self.value, "")


_EVENT_DESCRIPTIONS: dict[int, str] = {
    0: "Unknown",
    1: "Autofocus",
    2: "User 1 old",
    3: "User 2 old",
    4: "User 3 old",
    5: "User 4 old",
    6: "JOBs Event",
    7: "Command Executed",
    8: "Macro Event",
    9: "Experiment Paused",
    10: "Experiment Resumed",
    11: "Experiment Stopped by User",
    12: "Acquisition zero time",
    13: "Next Phase Moved by User",
    14: "Experiment Paused for Refocusing",
    15: "Stimulation",
    16: "External Stimulation",
    **{33 + i: f"User {i + 1}" for i in range(8)},
    41: "Before Capture",
    42: "After Capture",
    44: "No Acquisition Phase Start",
    45: "No Acquisition Phase End",
    46: "Hardware Error",
    47: "N-STORM",
    48: "Incubation Info",
    49: "Incubation Error",
    50: "Interactive Finish",
    51: "Pause Experiment",
    52: "WID Replenishment Start",
    53: "WID Replenishment End",
    54: "N-STORM",
}


class StimulationType(IntEnum):
    """Phase of a stimulation an event belongs to (``S/T`` of an event)."""

    NoStimulation = 0
    Sequential = 1
    Parallel = 2
    Manual = 3
    Begin = 4
    End = 5


@dataclass
class StimulationEvent:
    """The stimulation part of an experiment event (``S`` of an event)."""

    type: StimulationType = StimulationType.NoStimulation
    loop_index: int = 0
    position: int = 0
    description: str = ""


@dataclass
class ExperimentEvent:
    """One experiment event: when (ms on the acquisition clock), what and its texts."""

    id: int = 0
    time: float = 0.0
    time2: float = 0.0
    meaning: EventMeaning = EventMeaning.Unspecified
    description: str = ""
    data: str = ""
    stimulation: StimulationEvent | None = None
