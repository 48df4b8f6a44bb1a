"""Frame samplelists: round trip, time order, and one clear message per malformed row."""

import pandas as pd
import pytest

from ekya.errors import EkyaError
from ekya.streams.samplelist import FRAME_COLUMNS, read_frame_samplelist, write_frame_samplelist

ROWS = [
    [0, 1, 1, 0, 0, 10, 10, 0.9, 0.0, "cam"],
    [1, 3, 0, 2, 2, 12, 12, 0.8, 2.0, "cam"],
    [2, 2, 5, 1, 1, 11, 11, 0.7, 1.0, "cam"],
]


def write(tmp_path, rows, name="cam.csv"):
    p = tmp_path / name
    pd.DataFrame(rows, columns=FRAME_COLUMNS).to_csv(p, index=False)
    return p


def test_reads_in_time_order_with_schema(tmp_path):
    df = read_frame_samplelist(write(tmp_path, ROWS))
    assert df["timestamp"].tolist() == [0.0, 1.0, 2.0] and df["idx"].tolist() == [0, 1, 2]
    assert df["label"].tolist() == [1, 5, 0] and df["teacher_label"].tolist() == [-1, -1, -1]  # no teacher yet
    assert df["path"].iloc[1] == "cam/frame_images/000002.jpg"


def test_round_trip(tmp_path):
    df = read_frame_samplelist(write(tmp_path, ROWS))
    write_frame_samplelist(df, tmp_path / "out.csv")
    again = read_frame_samplelist(tmp_path / "out.csv")
    pd.testing.assert_frame_equal(df.drop(columns="source_row"), again.drop(columns="source_row"))


def test_class_map_drops_before_numbering(tmp_path):
    df = read_frame_samplelist(write(tmp_path, ROWS), class_map={1: 0, 5: 1})
    assert df["label"].tolist() == [0, 1] and df["idx"].tolist() == [0, 1]


@pytest.mark.parametrize("row, col, needle", [
    (1, 3, "not a number"), (2, 2, "class 9 is outside"), (1, 5, "box"),
])
def test_malformed_row_names_file_and_line(tmp_path, row, col, needle):
    rows = [list(r) for r in ROWS]
    rows[row][col] = {3: "x", 2: 9, 5: 0}[col]
    path = write(tmp_path, rows)
    with pytest.raises(EkyaError, match=needle) as e:
        read_frame_samplelist(path)
    assert str(path) in str(e.value) and f"line {row + 2}" in str(e.value)


def test_missing_file_and_header(tmp_path):
    with pytest.raises(EkyaError, match="samplelist not found"):
        read_frame_samplelist(tmp_path / "nope.csv")
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(EkyaError, match="header lacks"):
        read_frame_samplelist(tmp_path / "bad.csv")
