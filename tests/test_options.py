import pytest

from ipychat import errors
from ipychat.magics import ChatMagics
from ipychat.options import ChatOptions, parse


def p(line):
    return parse(ChatMagics.chat, line)


def test_every_option_parses():
    opts = p("-p openassistant -m big -t 0.3 -s 'be brief' --base-url http://127.0.0.1:1/x "
             "--proxy http://u:pw@proxy:8080 -o ans --no-history --format text --background "
             "--timeout 2.5 --api-key-env GROQ_KEY")
    assert opts == ChatOptions(provider="openassistant", model="big", temperature=0.3,
                               system="be brief", base_url="http://127.0.0.1:1/x",
                               proxy="http://u:pw@proxy:8080", out="ans", no_history=True,
                               format="text", background=True, timeout=2.5,
                               api_key_env="GROQ_KEY")


def test_long_forms_and_defaults():
    assert p("--provider x --model y --temperature 2 --system s --out v") == ChatOptions(
        provider="x", model="y", temperature=2.0, system="s", out="v")
    assert p("") == ChatOptions()


@pytest.mark.parametrize("line, message", [
    ("-t 2.5", "temperature must be a number from 0 to 2"),
    ("-t -0.1", "temperature must be a number from 0 to 2"),
    ("-t warm", "temperature must be a number from 0 to 2"),
    ("--format html", "--format must be one of markdown, text"),
    ("-o 1abc", "--out needs a variable name"),
    ("--base-url ftp://host", "--base-url must be an http:// or https:// URL"),
    ("--proxy socks://user:secret@h", "--proxy must be an http:// or https:// URL"),
    ("--timeout 0", "--timeout must be a number of seconds above 0"),
    ("--timeout nan", "--timeout must be a number of seconds above 0"),
    ("--timeout inf", "--timeout must be a number of seconds above 0"),
    ("-t nan", "temperature must be a number from 0 to 2"),
    ("--api-key-env sk-secret-1234", "--api-key-env needs an environment variable name"),
    ("-s 'unclosed", "cannot read the options"),
    ("--nope", "unrecognized arguments"),
    ("--max-tokens 0", "--max-tokens must be a whole number above 0"),
    ("--max-tokens 1.5", "--max-tokens must be a whole number above 0"),
    ("--max-tokens lots", "--max-tokens must be a whole number above 0"),
    ("--reasoning max", "--reasoning must be one of off, low, medium, high"),
    ("--param top_p", "--param needs KEY=VALUE"),
    ("--param =1", "--param needs KEY=VALUE"),
    ("--param model=gpt-4", "--param cannot set 'model'"),
    ("--param stream=false", "--param cannot set 'stream'"),
    ("--param messages=[]", "--param cannot set 'messages'"),
    ("stray", "unrecognized arguments"),
    ("--tools ''", "--tools needs at least one function name"),
    ("--tools 'f, os.system()'", "--tools takes names like f or obj.method, not 'os.system()'"),
    ("--tools obj._private", "--tools takes names like f or obj.method"),
    ("--max-tool-rounds 0", "--max-tool-rounds must be a whole number above 0"),
])
def test_bad_options_are_one_line_usage_errors(line, message):
    with pytest.raises(errors.UsageError) as caught:
        p(line)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_pasted_key_is_never_echoed():
    with pytest.raises(errors.UsageError) as caught:
        p("--api-key-env sk-secret-1234")
    assert "sk-secret" not in str(caught.value)


def test_proxy_password_never_shown():
    with pytest.raises(errors.UsageError) as caught:
        p("--proxy socks://user:secret@h")
    assert "secret" not in str(caught.value)
    assert "secret" not in repr(p("--proxy http://user:secret@h:1"))


def test_merged_over_takes_unset_values_from_defaults():
    defaults = ChatOptions(provider="lockchat", model="m", temperature=0.1, format="text")
    merged = ChatOptions(model="other").merged_over(defaults)
    assert merged == ChatOptions(provider="lockchat", model="other", temperature=0.1, format="text")


def test_model_parameters_parse_and_reach_the_body():
    opts = p("--max-tokens 64 --reasoning low --param top_p=0.9 --param seed=1 "
             "--param 'stop=[\"\\n\\n\"]' --param user=alice --param 'note=a b' -t 0.2 "
             "--no-stats")
    assert opts.params == {"top_p": 0.9, "seed": 1, "stop": ["\n\n"], "user": "alice",
                           "note": "a b"}
    assert opts.no_stats
    assert opts.body_options() == {"top_p": 0.9, "seed": 1, "stop": ["\n\n"], "user": "alice",
                                   "note": "a b", "temperature": 0.2, "max_tokens": 64,
                                   "reasoning": "low"}
    assert p("").body_options() == {}


def test_params_merge_over_defaults_cell_winning():
    defaults = p("--param top_p=0.9 --param seed=1 --max-tokens 10")
    cell = p("--param seed=2").merged_over(defaults)
    assert cell.params == {"top_p": 0.9, "seed": 2} and cell.max_tokens == 10


def test_tool_options():
    opts = p("--tools 'f, shop.price' --max-tool-rounds 3 --quiet-tools")
    assert (opts.tools, opts.max_tool_rounds, opts.quiet_tools) == ("f,shop.price", 3, True)
    kept = ChatOptions(tools="f", max_tool_rounds=2)
    assert p("-t 1").merged_over(kept).tools == "f"
    assert p("--tools g").merged_over(kept).tools == "g"
    dropped = p("--no-tools").merged_over(kept)
    assert dropped.tools is None and dropped.max_tool_rounds == 2
