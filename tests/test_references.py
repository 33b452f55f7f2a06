"""{references} in a prompt: the field forms, no code run, bounded values,
data frames described, images recognised, and secrets refused."""

import base64
import io

import pytest

from ipychat import errors
from ipychat.references import (MAX_IMAGE_BYTES, Prompt, check_images, expand, image_file,
                                prepare, refuse_secrets)
from ipychat.values import PNG_MAGIC, Image, as_image, as_text, capped


class Thing:
    colour = "red"
    _hidden = "no"

    def __init__(self):
        self.inner = {"k": ["a", "b"]}

    @property
    def boom(self):
        raise RuntimeError("a property that raises")


NS = {"topic": "lists", "n": 3, "nested": "{topic}", "thing": Thing(), "In": ["", "x = 1"],
      "Out": {1: 42}, "Err": {2: "ZeroDivisionError: division by zero"}, "_": "last",
      "f": lambda: None, "d": {"key": "v", 1: "one"}}


@pytest.mark.parametrize("text, expected", [
    ("Explain {topic}", "Explain lists"),
    ("{topic} and {topic}", "lists and lists"),
    ("keep {{braces}} and }}", "keep {braces} and }"),
    ("unknown {nope} stays", "unknown {nope} stays"),
    ("code {x: 1} stays", "code {x: 1} stays"),
    ("value {n}", "value 3"),
    ("once {nested}", "once {topic}"),  # a value is never expanded again
    ("{thing.colour}", "red"),
    ("{thing.inner['k'][1]}", "b"),
    ('{thing.inner["k"][-1]}', "b"),
    ("{In[1]} gave {Out[1]}", "x = 1 gave 42"),
    ("{Err[2]}", "ZeroDivisionError: division by zero"),
    ("{_}", "last"),
    ("{d[1]} {d['key']}", "one v"),
    # Not followed: private attributes, missing keys, attributes that raise.
    ("{thing._hidden}", "{thing._hidden}"),
    ("{f.__globals__}", "{f.__globals__}"),
    ("{thing.boom}", "{thing.boom}"),
    ("{d['nope']}", "{d['nope']}"),
    ("{Out[7]}", "{Out[7]}"),
    # No calls, no expressions: these are not fields at all.
    ("{topic.upper()}", "{topic.upper()}"),
    ("{n + 1}", "{n + 1}"),
    ("{d[n]}", "{d[n]}"),
])
def test_fields(text, expected):
    assert expand(text, NS).text == expected


def test_no_code_runs_for_a_call_looking_field():
    ran = []

    class Spy:
        def __getattr__(self, name):  # only public names reach it
            ran.append(name)
            return "x"

    assert expand("{s.__class__} {s._x} {s.ok}", {"s": Spy()}).text == "{s.__class__} {s._x} x"
    assert ran == ["ok"]


def test_long_values_are_capped_with_a_note():
    text = expand("{big}", {"big": "y" * 50}, limit=10).text
    assert text.startswith("y" * 10 + "\n… [40 more characters cut")
    assert "ChatMagics.max_value_chars" in text
    assert capped("short", 10) == "short"


def test_pandas_frames_are_described_not_dumped():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": range(1_000_000), "b": ["x"] * 1_000_000})
    text = as_text(frame)
    assert text.startswith("pandas DataFrame, 1,000,000 rows × 2 columns\ncolumns:\n  a: int64")
    assert "first 5 rows:" in text and len(text) < 1000
    series = as_text(frame["a"])
    assert series.startswith("pandas Series 'a', 1,000,000 rows, dtype int64")


def test_polars_frames_are_described_not_dumped():
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame({"a": list(range(100_000))})
    text = as_text(frame)
    assert text.startswith("polars DataFrame, 100,000 rows × 1 columns\ncolumns:\n  a: Int64")
    assert len(text) < 1000
    assert as_text(frame["a"]).startswith("polars Series 'a', 100,000 rows, dtype Int64")


def test_numpy_arrays_use_their_summarising_repr():
    np = pytest.importorskip("numpy")
    text = as_text(np.arange(1_000_000))
    assert text == repr(np.arange(1_000_000)) and "..." in text and len(text) < 200


def png(size=(4, 3)) -> bytes:
    Image_ = pytest.importorskip("PIL.Image")
    buffer = io.BytesIO()
    Image_.new("RGB", size, "red").save(buffer, format="PNG")
    return buffer.getvalue()


def test_images_of_every_kind_are_recognised():
    pil = pytest.importorskip("PIL.Image")
    assert as_image(pil.new("RGB", (4, 3))).media_type == "image/png"
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure()
    figure.add_subplot().plot([1, 2, 3])
    image = as_image(figure)
    assert image.data.startswith(PNG_MAGIC) and image.label == "figure"
    from IPython.display import Image as IPImage

    assert as_image(IPImage(data=png())).media_type == "image/png"
    assert as_image(b"\xff\xd8\xff\xe0rest").media_type == "image/jpeg"
    assert as_image(b"not an image") is None and as_image("text") is None


def test_a_figure_field_becomes_an_image_part_in_place():
    data = png()
    prompt = expand("Look: {pic} What is it?", {"pic": data})
    assert prompt.content() == [
        {"type": "text", "text": "Look: "},
        {"type": "image", "media_type": "image/png",
         "data": base64.b64encode(data).decode()},
        {"type": "text", "text": " What is it?"}]
    assert prompt.text == f"Look: [image: PNG, {len(data) / 1024:,.0f} KB] What is it?"
    assert expand("plain {topic}", NS).content() == "plain lists"


def test_images_are_bounded():
    big = Prompt([Image(b"x" * (MAX_IMAGE_BYTES + 1), "image/png")])
    with pytest.raises(errors.UsageError, match="at most 20 MB"):
        check_images(big)


def test_image_files(tmp_path):
    good = tmp_path / "a.png"
    good.write_bytes(png())
    assert image_file(str(good)).label == "a.png"
    bad = tmp_path / "a.txt"
    bad.write_text("hello")
    with pytest.raises(errors.UsageError, match="is not a PNG or JPEG"):
        image_file(str(bad))
    with pytest.raises(errors.UsageError, match="cannot read --image"):
        image_file(str(tmp_path / "missing.png"))


def test_a_prompt_carrying_a_secret_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-refs-Very-Secret-0123456789")
    env = {"environ": {"OPENAI_API_KEY": "sk-refs-Very-Secret-0123456789"}}
    with pytest.raises(errors.UsageError) as caught:
        prepare("Here: {environ}", env, ["OPENAI_API_KEY"])
    assert "OPENAI_API_KEY" in str(caught.value)
    assert "Very-Secret" not in str(caught.value) and "Very-Secret" not in repr(caught.value)
    # A plain {name} field counts too, and so does a typed value.
    with pytest.raises(errors.UsageError):
        prepare("{k}", {"k": "sk-refs-Very-Secret-0123456789"}, ["OPENAI_API_KEY"])
    assert prepare("nothing secret", {}, ["OPENAI_API_KEY"]).text == "nothing secret"
    monkeypatch.setenv("SHORT", "abc")  # too short to be told apart from ordinary text
    refuse_secrets("abc", ["SHORT"])
