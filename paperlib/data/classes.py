"""The 41 event classes of FSDKaggle2018 (DCASE 2018 Task 2) and the 10 TAU 2019 scenes."""

from __future__ import annotations

CLASSES: tuple[str, ...] = (
    "Acoustic_guitar", "Applause", "Bark", "Bass_drum", "Burping_or_eructation", "Bus",
    "Cello", "Chime", "Clarinet", "Computer_keyboard", "Cough", "Cowbell", "Double_bass",
    "Drawer_open_or_close", "Electric_piano", "Fart", "Finger_snapping", "Fireworks", "Flute",
    "Glockenspiel", "Gong", "Gunshot_or_gunfire", "Harmonica", "Hi-hat", "Keys_jangling",
    "Knock", "Laughter", "Meow", "Microwave_oven", "Oboe", "Saxophone", "Scissors", "Shatter",
    "Snare_drum", "Squeak", "Tambourine", "Tearing", "Telephone", "Trumpet",
    "Violin_or_fiddle", "Writing",
)  # fmt: skip
"""FSDKaggle2018 labels in alphabetical order; a label's index is its target column."""

NUM_CLASSES: int = len(CLASSES)
CLASS_INDEX: dict[str, int] = {name: i for i, name in enumerate(CLASSES)}

SCENES: tuple[str, ...] = (
    "airport", "shopping_mall", "metro_station", "street_pedestrian", "public_square",
    "street_traffic", "tram", "bus", "metro", "park",
)  # fmt: skip
"""TAU Urban Acoustic Scenes 2019 scene labels (DCASE 2019 Task 1a)."""

if NUM_CLASSES != 41 or len(set(CLASSES)) != 41:  # guards against an edit slip
    raise RuntimeError("paperlib.data.classes must list 41 distinct FSDKaggle2018 labels")
