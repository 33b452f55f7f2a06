"""Tools from Python callables: schemas from signatures and hints, names and
descriptions, what cannot be described, arguments checked before a call,
results as bounded text."""

import functools
from typing import Literal, Optional

import pytest

from ipychat import errors, tool
from ipychat.tools import BadArguments, ToolBox, describe, error_text, result_text


def get_weather(city: str, days: int = 1, unit: Literal["C", "F"] = "C",
                when: Optional[str] = None, tags: list[str] = [], scale: dict[str, float] = {},
                exact: bool = False, anything: object = "x", plain=3):
    """Weather for a city.

    Longer text that the model does not need.
    """
    return {"city": city, "days": days}


def test_schema_from_signature_hints_defaults_and_docstring():
    assert describe(get_weather).schema == {
        "name": "get_weather", "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer", "default": 1},
            "unit": {"type": "string", "enum": ["C", "F"], "default": "C"},
            "when": {"type": ["string", "null"], "default": None},
            "tags": {"type": "array", "items": {"type": "string"}, "default": []},
            "scale": {"type": "object", "additionalProperties": {"type": "number"},
                      "default": {}},
            "exact": {"type": "boolean", "default": False},
            "anything": {"type": "string", "default": "x"},  # any other hint: a string
            "plain": {"type": "integer", "default": 3},  # no hint: the default's type
        }, "required": ["city"]}}


class Shop:
    def price(self, item: str) -> float:
        """What an item costs."""
        return 2.5


def test_bound_methods_partials_and_the_decorator():
    assert describe(Shop().price).schema["parameters"]["required"] == ["item"]
    in_paris = functools.partial(get_weather, "Paris", unit="F")
    found = describe(in_paris, "paris_weather")
    assert found.name == "paris_weather" and found.description == "Weather for a city."
    # What the partial fixed is not the model's to change.
    assert "city" not in found.parameters["properties"]
    assert "unit" not in found.parameters["properties"]

    @tool(name="forecast", description="Tomorrow's weather.")
    def anything(city: str):
        pass

    assert describe(anything, "typed_name").schema["name"] == "forecast"
    assert anything.__name__ == "anything"  # still the function itself
    method = tool(Shop().price, name="cost")
    assert describe(method).name == "cost" and method(item="x") == 2.5
    assert describe(tool(get_weather)).name == "get_weather"


@pytest.mark.parametrize("function, words", [
    (lambda *values: 0, "cannot be a tool name"),
    (functools.partial(lambda *values: 0), "cannot be a tool name"),
    (tool(lambda *values: 0, name="f"), "takes *values, which a model cannot pass"),
    (tool(lambda **options: 0, name="f"), "takes **options"),
    (42, "is a int, not a function"),
])
def test_what_cannot_be_described_is_one_line(function, words):
    with pytest.raises(errors.UsageError, match=r"\A.*\Z") as caught:
        describe(function)
    assert words in str(caught.value)


def test_names_come_from_the_namespace():
    shop = Shop()
    box = ToolBox.from_names("get_weather, shop.price", {"get_weather": get_weather,
                                                        "shop": shop})
    assert box.names == ["get_weather", "price"] and len(box) == 2
    for names, words in [("nope", "no function 'nope' in the notebook"),
                         ("shop.missing", "'shop.missing' does not exist"),
                         ("shop._secret", "--tools takes names like"),
                         ("get_weather,get_weather", "two tools are named get_weather"),
                         (" , ", "needs at least one")]:
        with pytest.raises(errors.UsageError, match=words):
            ToolBox.from_names(names, {"get_weather": get_weather, "shop": shop})


@pytest.mark.parametrize("raw, expected", [
    ('{"city": "Paris"}', {"city": "Paris"}),
    ('{"city": "Paris", "days": 2.0, "when": null, "tags": ["a"]}',
     {"city": "Paris", "days": 2, "when": None, "tags": ["a"]}),
    ('{"city": "Paris", "scale": {"x": 1}}', {"city": "Paris", "scale": {"x": 1}}),
])
def test_good_arguments(raw, expected):
    found = describe(get_weather).arguments(raw)
    assert found == expected and type(found.get("days", 0)) is int


@pytest.mark.parametrize("raw, message", [
    ("{'city': 'Paris'}", "the arguments are not JSON"),
    ('["Paris"]', "the arguments must be a JSON object, not a list"),
    ("{}", "'city' is required"),
    ('{"city": 1}', "'city' must be a string, not 1"),
    ('{"city": "P", "days": "two"}', "'days' must be an integer, not \"two\""),
    ('{"city": "P", "days": true}', "'days' must be an integer, not true"),
    ('{"city": "P", "unit": "K"}', "'unit' must be one of [\"C\", \"F\"], not \"K\""),
    ('{"city": "P", "tags": [1]}', "'tags[0]' must be a string, not 1"),
    ('{"city": "P", "scale": {"x": "big"}}', "'scale['x']' must be a number"),
    ('{"city": "P", "exact": null}', "'exact' must be a boolean, not null"),
    ('{"city": "P", "os": "rm"}', "'os' is not a parameter of get_weather (it takes city, "),
])
def test_bad_arguments_say_what_is_wrong(raw, message):
    with pytest.raises(BadArguments) as caught:
        describe(get_weather).arguments(raw)
    assert str(caught.value).startswith(message)


def test_positional_only_parameters_are_passed_by_position():
    def power(base: int, /, exponent: int = 2):
        return base ** exponent

    found = describe(power)
    assert found.call(found.arguments('{"base": 3, "exponent": 3}')) == 27


def test_results_are_json_or_bounded_text():
    assert result_text({"temp": 21, "when": "now"}) == '{"temp": 21, "when": "now"}'
    assert result_text([1, "é"]) == '[1, "é"]'
    assert result_text({"at": Shop}) .startswith('{"at": "<class ')  # default=str
    assert result_text(None) == "None" and result_text(2.5) == "2.5"
    long = result_text("x" * 100, limit=10)
    assert long.startswith("x" * 10 + "\n… [90 more characters cut")
    assert result_text(list(range(100)), limit=10).startswith("[0, 1, 2, ")
    assert error_text(ValueError("no\nclock")) == "ValueError: no clock"
    assert error_text(KeyError()) == "KeyError"
