"""Finding providers: built-ins through the ``ipychat.providers`` entry-point
group, runtime registrations, dotted paths."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

import pytest

from ipychat import errors
from ipychat.providers import (
    AsyncGeneratorProvider, Cromicle, Lockchat, OpenAssistant, ProviderInfo, Vitalentum,
    get_provider, list_providers, register_provider, unregister_provider, registry,
)

BUILT_INS = {"cromicle": Cromicle, "openassistant": OpenAssistant, "vitalentum": Vitalentum,
             "lockchat": Lockchat}


class Echo(AsyncGeneratorProvider):
    model = "echo-1"
    working = True

    @classmethod
    async def create_async_generator(cls, model, messages, proxy=None, **kwargs):
        yield messages[-1]["content"]


@pytest.fixture
def registered():
    """Register under names; every registration is undone after the test."""
    names = []

    def register(name, cls):
        names.append(name)
        register_provider(name, cls)

    yield register
    for name in names:
        unregister_provider(name)


def test_built_ins_come_from_the_entry_point_group():
    found = {ep.name: ep.value for ep in entry_points(group="ipychat.providers")}
    for name, cls in BUILT_INS.items():
        assert found[name] == f"{cls.__module__}:{cls.__name__}"


@pytest.mark.parametrize("name", ["openassistant", "OpenAssistant", "OPENASSISTANT",
                                  " openassistant "])
def test_get_provider_is_case_insensitive(name):
    assert get_provider(name) is OpenAssistant


@pytest.mark.parametrize("name", list(BUILT_INS))
def test_each_built_in_is_found(name):
    assert get_provider(name) is BUILT_INS[name]


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(errors.ProviderNotFound) as caught:
        get_provider("nosuch")
    text = str(caught.value)
    assert text.startswith("unknown provider 'nosuch'. Known providers: ")
    assert all(name in text for name in BUILT_INS) and "\n" not in text


@pytest.mark.parametrize("name", ["", "  ", None, 3])
def test_no_name_is_a_usage_error(name):
    with pytest.raises(errors.UsageError, match="Known providers: .*cromicle"):
        get_provider(name)


def test_list_providers_describes_each_built_in():
    infos = {info.name: info for info in list_providers()}
    assert infos["openassistant"] == ProviderInfo(
        name="openassistant", label="OpenAssistant", model="OA_SFT_Llama_30B_6",
        base_url="https://open-assistant.io", working=False, needs_auth=True,
        supports_stream=True, supports_message_history=False, provider=OpenAssistant)
    assert infos["cromicle"].base_url == "https://cromicle.top"
    assert infos["vitalentum"].base_url == "https://app.vitalentum.io"
    assert infos["lockchat"].base_url == "http://supertest.lockchat.app"
    assert all(not infos[name].needs_auth for name in ("cromicle", "vitalentum", "lockchat"))


async def test_register_and_unregister_a_provider(registered):
    registered("MyEcho", Echo)
    assert get_provider("myecho") is Echo
    answer = await get_provider("MYECHO").create_async(None, [{"role": "user", "content": "hi"}])
    assert answer == "hi"
    info = next(i for i in list_providers() if i.name == "myecho")
    assert (info.label, info.model, info.working) == ("Echo", "echo-1", True)
    unregister_provider("MyEcho")
    with pytest.raises(errors.ProviderNotFound):
        get_provider("myecho")


def test_a_registration_shadows_a_built_in_until_unregistered(registered):
    registered("cromicle", Echo)
    assert get_provider("Cromicle") is Echo
    unregister_provider("cromicle")
    assert get_provider("cromicle") is Cromicle


def test_unregistering_an_unknown_name_is_harmless():
    unregister_provider("never-registered")


@pytest.mark.parametrize("path, cls", [("tests.test_registry:Echo", Echo),
                                       ("ipychat.providers.lockchat:Lockchat", Lockchat)])
def test_a_dotted_path_loads_a_class(path, cls):
    assert get_provider(path) is cls


@pytest.mark.parametrize("path", ["nosuch.module:X", "ipychat.providers.cromicle:Nope",
                                  ":Echo"])
def test_a_bad_dotted_path_is_a_usage_error(path):
    with pytest.raises(errors.UsageError, match="package.module:ClassName"):
        get_provider(path)


def test_a_broken_entry_point_fails_alone(monkeypatch):
    broken = EntryPoint(name="broken", value="nosuch_module_xyz:Provider",
                        group="ipychat.providers")
    found = {**registry._entry_points(), "broken": broken}
    monkeypatch.setattr(registry, "_entry_points", lambda: found)
    with pytest.raises(errors.ChatError, match="provider 'broken' failed to load"):
        get_provider("broken")
    names = [info.name for info in list_providers()]
    assert "broken" not in names and set(BUILT_INS) <= set(names)
