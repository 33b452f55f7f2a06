import io
import tracemalloc

from ipychat.markdown import safe_markdown
from ipychat.render import PLAIN_COPY_LIMIT, StreamView, TerminalView, bundle


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Timers:
    """A fake ``loop.call_later``: tests fire due timers by hand."""

    def __init__(self, clock):
        self.clock, self.pending = clock, []

    def __call__(self, delay, callback):
        timer = Timer(self.clock.now + delay, callback)
        self.pending.append(timer)
        return timer

    def advance(self, seconds):
        self.clock.now += seconds
        for timer in [t for t in self.pending if t.due <= self.clock.now and not t.cancelled]:
            self.pending.remove(timer)
            timer.callback()


class Timer:
    def __init__(self, due, callback):
        self.due, self.callback, self.cancelled = due, callback, False

    def cancel(self):
        self.cancelled = True


def make_view(**kwargs):
    clock = Clock()
    timers = Timers(clock)
    published = []

    def publish(data, handle):
        published.append(data["text/plain"])
        return "handle"

    view = StreamView(publish=publish, schedule=timers, clock=clock, **kwargs)
    return view, published, timers


def test_first_chunk_at_once_then_coalesced_with_trailing_flush():
    view, published, timers = make_view(fmt="text", interval=0.1)
    view.start()
    view.append("a")
    assert published == ["…", "a"]
    view.append("b")
    view.append("c")
    assert published == ["…", "a"]  # held back within the interval
    timers.advance(0.1)
    assert published == ["…", "a", "abc"]  # the trailing flush, with no new chunk
    view.finish()
    assert published == ["…", "a", "abc"]  # nothing new: no duplicate update


def test_many_chunks_in_little_time_give_few_updates():
    view, published, timers = make_view(fmt="text", interval=0.1)
    view.start()
    for i in range(10_000):
        view.append(f"{i} ")
        timers.advance(0.0001)  # 10,000 chunks over 1 s
    view.finish()
    assert len(published) <= 13
    assert published[-1] == "".join(f"{i} " for i in range(10_000))


def test_finish_marks_and_header():
    view, published, _ = make_view(fmt="markdown", header="*note*")
    view.start()
    view.append("partial")
    view.finish("interrupted")
    assert published[-1] == "*note*\n\npartial\n\n*(interrupted)*"


def test_error_before_any_text_says_no_answer():
    view, published, _ = make_view(fmt="text")
    view.start()
    view.finish("cut short: error below")
    assert published[-1] == "\n(no answer: error below)"


def test_safe_markdown_escapes_html_outside_code():
    text = ('Hi <script>alert(1)</script> <img src=x onerror=alert(2)> & '
            '[x](javascript:alert(3)) `a<b` \n```\nif a < b: pass\n```\n')
    safe = safe_markdown(text)
    assert "<script>" not in safe and "<img" not in safe
    assert "&lt;script>" in safe and "&amp;" in safe
    assert "(javascript:" not in safe
    assert "`a<b`" in safe and "if a < b: pass" in safe


def test_bundle_formats():
    assert bundle("<b>", "text") == {"text/plain": "<b>"}
    assert bundle("<b>", "markdown") == {"text/markdown": "&lt;b>", "text/plain": "<b>"}
    assert bundle("<b>", "text", header="*note*", suffix="\n(x)") == {
        "text/plain": "*note*\n\n<b>\n(x)"}
    assert bundle("<b>", "markdown", header="*note*", suffix="\n\n*(x)*") == {
        "text/markdown": "*note*\n\n&lt;b>\n\n*(x)*", "text/plain": "*note*\n\n<b>\n\n*(x)*"}


def test_a_huge_answer_sends_its_plain_copy_cut_short_but_its_mark_whole():
    # Frontends show text/markdown; text/plain is for consoles and logs. Past
    # the limit a second full copy would double every update and the
    # notebook's size: it holds the start, says what is left out, keeps the mark.
    text = "x" * (PLAIN_COPY_LIMIT + 5)
    data = bundle(text, "markdown", suffix="\n\n*(interrupted)*")
    assert data["text/markdown"] == text + "\n\n*(interrupted)*"
    assert data["text/plain"] == ("x" * PLAIN_COPY_LIMIT + "\n… (5 more characters: the "
                                  "Markdown output has the whole answer)\n\n*(interrupted)*")
    assert bundle(text[:-5], "markdown")["text/plain"] == text[:-5]  # at the limit: whole
    assert bundle(text, "text")["text/plain"] == text  # the only copy stays whole


def test_the_last_update_of_a_big_answer_copies_it_only_where_it_must():
    # What one update holds besides the answer: its escaped Markdown (one copy)
    # and a bounded plain part. No copy of the text for the header or the mark.
    text = "Some prose with `x<y` & a <tag>.\n" * 60_000
    view, published, _ = make_view(fmt="markdown", header="*note*")
    view.start()
    view.append(text)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        view.finish("interrupted")
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert published[-1].endswith("*(interrupted)*")
    markdown = len(safe_markdown(text))  # 1.2x the text here: "&amp;", "&lt;"
    assert peak <= 2.1 * markdown + PLAIN_COPY_LIMIT


def test_terminal_view_streams_each_chunk():
    import io

    out = io.StringIO()
    view = TerminalView(header="note", stream=out)
    view.start()
    view.append("a")
    assert out.getvalue() == "note\na"
    view.append("b")
    view.finish("interrupted")
    assert out.getvalue() == "note\nab\n(interrupted)\n"


def test_a_slow_publish_spaces_the_next_updates_out():
    # Once one update costs more than the interval (a huge answer), flushing on
    # every chunk would never catch up: updates must spread out instead.
    clock = Clock()
    timers = Timers(clock)
    published = []

    def slow_publish(data, handle):
        published.append(data["text/plain"])
        clock.now += 0.3  # rendering and sending this update took 0.3 s
        return "handle"

    view = StreamView(fmt="text", interval=0.1, publish=slow_publish, schedule=timers,
                      clock=clock)
    view.start()
    for i in range(1_000):
        view.append("x")
        timers.advance(0.001)
    view.finish()
    assert published[-1] == "x" * 1_000
    assert len(published) <= 8  # not ~1,000: at most one update per 4 x 0.3 s


def make_segmented_view(segment, **kwargs):
    """A view whose publisher keeps every output, as the notebook does."""
    outputs = []  # [data] per output, in order

    def publish(data, handle):
        if handle is None:
            outputs.append(data)
            return len(outputs) - 1
        outputs[handle] = data
        return handle

    clock = Clock()
    view = StreamView(publish=publish, schedule=Timers(clock), clock=clock, segment=segment,
                      **kwargs)
    return view, outputs


def test_a_huge_answer_continues_in_new_outputs_cut_between_paragraphs():
    paragraphs = [f"Paragraph {i} says a <b> thing.\n\n" for i in range(400)]
    answer = "".join(paragraphs)
    view, outputs = make_segmented_view(1000, fmt="markdown", header="*note*")
    view.start()
    for piece in paragraphs:
        view.append(piece)
    view.finish("interrupted")
    texts = [o["text/plain"] for o in outputs]
    assert len(outputs) >= len(answer) // 1000 + 1
    assert texts[0].startswith("*note*\n\nParagraph 0 ")
    assert all(not t.startswith("*note*") for t in texts[1:])
    assert texts[-1].endswith("\n\n*(interrupted)*")
    body = "".join(texts)[len("*note*\n\n"):-len("\n\n*(interrupted)*")]
    assert body == answer  # nothing lost, nothing twice
    assert all(t.endswith(".\n\n") for t in texts[:-1])  # cut between paragraphs
    assert all(len(t) >= 500 for t in texts[:-1])  # in the second half of the limit
    assert all(len(o["text/markdown"]) <= 1000 + len("*note*\n\n") + 100 for o in outputs)
    assert view.text == answer


def test_a_segment_is_never_cut_inside_a_fence():
    code = "```python\n" + "x = 1 < 2\n\n" * 60 + "```\n\n"
    answer = "Intro.\n\n" + code + "Outro.\n\n" * 5
    view, outputs = make_segmented_view(400, fmt="markdown")
    view.start()
    view.append(answer)
    view.finish()
    texts = [o["text/plain"] for o in outputs]
    assert "".join(texts) == answer
    assert texts[0] == "Intro.\n\n"  # the fence starts the next output whole
    assert texts[1].startswith("```python\n")  # longer than the limit: cut where it must be
    assert sum(t.count("```") for t in texts) == 2


def test_one_huge_piece_fills_several_outputs_at_once():
    view, outputs = make_segmented_view(100, fmt="text")
    view.start()
    view.append("line of text\n" * 100)  # 1,300 characters in one piece
    view.finish()
    assert "".join(o["text/plain"] for o in outputs) == "line of text\n" * 100
    assert len(outputs) >= 13 and all(len(o["text/plain"]) <= 100 for o in outputs)


# -- reasoning and stats --------------------------------------------------------------


def markdown_view(**kwargs):
    clock = Clock()
    published = []

    def publish(data, handle):
        published.append(data)
        return "handle"

    view = StreamView(publish=publish, schedule=Timers(clock), clock=clock, **kwargs)
    return view, published, clock


def test_reasoning_shows_open_while_thinking_then_folds_when_the_answer_starts():
    view, published, clock = markdown_view()
    view.reason("Let me think.")
    thinking = published[-1]["text/markdown"]
    assert thinking.startswith("<details open><summary>Thinking… (3 words)</summary>")
    assert "> Let me think." in thinking
    clock.now += 1
    view.append("Yes.")
    answered = published[-1]["text/markdown"]
    assert answered.startswith("<details><summary>Reasoning (3 words)</summary>")
    assert answered.endswith("</details>\n\nYes.")
    assert published[-1]["text/plain"] == "(reasoning: 3 words)\n\nYes."


def test_reasoning_updates_share_the_answer_budget():
    view, published, clock = markdown_view()
    for i in range(50):
        view.reason(f"w{i} ")
        clock.now += 0.001
    view.finish()
    assert len(published) == 2  # the first piece at once, then the final flush
    assert "w49" in published[-1]["text/markdown"]


def test_shown_keeps_reasoning_open_and_hidden_shows_only_a_word_count():
    view, published, clock = markdown_view(reasoning="shown")
    view.reason("a b")
    clock.now += 1
    view.append("x")
    assert published[-1]["text/markdown"].startswith("<details open><summary>Reasoning (2")
    assert "a b" in published[-1]["text/plain"]
    view, published, clock = markdown_view(reasoning="hidden")
    view.reason("a b")
    assert published[-1]["text/markdown"] == "*Thinking… 2 words*\n\n"
    clock.now += 1
    view.append("x")
    assert published[-1]["text/markdown"] == "x" and "a b" not in published[-1]["text/plain"]


HOSTILE_REASONING = "```\n<img src=x onerror=alert(1)>\n</details>\n<script>alert(2)</script>"


def test_hostile_reasoning_is_escaped_and_kept_inside_its_quote():
    view, published, clock = markdown_view()
    view.reason(HOSTILE_REASONING)
    clock.now += 1
    view.append("answer")
    markdown = published[-1]["text/markdown"]
    section, answer = markdown.rsplit("</details>\n\n", 1)
    assert answer == "answer"
    # Every reasoning line sits in the quote, so the unclosed fence ends with it.
    body = section.split("</summary>\n\n", 1)[1].rstrip("\n")
    assert all(line.startswith(">") for line in body.split("\n"))
    # An unclosed fence is not sure code: escaped like prose, tags and all.
    assert "<img" not in markdown and "<script" not in markdown
    assert markdown.count("</details>") == 1 and "&lt;/details>" in body


def test_stats_line_and_mark_go_under_the_answer():
    view, published, clock = markdown_view()
    view.append("cut")
    view.finish("stopped at the token limit: raise it with --max-tokens", "m · 1.0 s in all")
    assert published[-1]["text/markdown"] == (
        "cut\n\n*(stopped at the token limit: raise it with --max-tokens)*\n\n"
        "*m · 1.0 s in all*")
    text_view, published, _ = markdown_view(fmt="text")
    text_view.append("cut")
    text_view.finish("", "m · 1.0 s in all")
    assert published[-1]["text/plain"] == "cut\n[m · 1.0 s in all]"


def test_terminal_view_dims_reasoning_then_prints_the_answer():
    out = io.StringIO()
    view = TerminalView(stream=out)
    view.reason("hmm")
    view.append("Yes")
    view.finish("", "m · 1 s")
    dim, reset = TerminalView.DIM, TerminalView.RESET
    assert out.getvalue() == (f"{dim}Thinking…\n{dim}hmm{reset}\n\nYes\n{dim}[m · 1 s]{reset}\n")
    hidden = io.StringIO()
    view = TerminalView(stream=hidden, reasoning="hidden", stats=False)
    view.reason("hmm")
    view.append("Yes")
    view.finish()
    assert hidden.getvalue() == "Yes\n"


# -- tool calls -----------------------------------------------------------------------

def run_of(name="get_weather", arguments=None, **outcome):
    from ipychat.answer import ToolRun

    arguments = {"city": "Paris"} if arguments is None else arguments
    return ToolRun("c1", name, arguments, "{}", **outcome)


def test_a_call_shows_at_once_then_its_result_folded_under_the_text():
    view, published, timers = make_view(fmt="text", interval=10)
    view.start()
    view.append("Checking.")
    run = run_of()
    view.tool(run)  # at once, whatever the interval: a plain tool may block the loop
    assert published[-1] == 'Checking.\n\n[tool] get_weather(city="Paris") …'
    run.result, run.seconds = '{"temp": 21, "sky": "clear"}', 0.2
    view.tool(run)
    view.append(" It is 21.")
    view.finish()
    assert published[-1] == ('Checking. It is 21.\n\n[tool] get_weather(city="Paris") → '
                             '{"temp": 21, "sky": "clear"}')
    assert len(published) == 4  # start, the call, the final flush (the end was coalesced)


def test_the_section_is_open_while_calls_are_the_latest_thing():
    view, published, _ = make_view(interval=0)
    view._publish = lambda data, handle: published.append(data) or "h"
    view.start()
    view.append("Text.")
    view.tool(run_of(result="1"))
    assert "<details open><summary>1 tool call</summary>" in published[-1]["text/markdown"]
    view.append(" More.")
    assert "<details><summary>1 tool call</summary>" in published[-1]["text/markdown"]


def test_tool_lines_cannot_escape_their_code_block():
    hostile = "``` </details><script>alert(1)</script> ````"
    view, published, _ = make_view(interval=0)
    view._publish = lambda data, handle: published.append(data) or "h"
    view.start()
    view.append("An open block:\n```python\nx = 1\n")
    view.tool(run_of(arguments=hostile, error=hostile))
    markdown = published[-1]["text/markdown"]
    assert markdown.startswith("An open block:\n```python\nx = 1\n```\n\n<details open>")
    assert "\n`````text\nget_weather(``` </details>" in markdown
    assert markdown.endswith("````\n`````\n\n</details>")


def test_quiet_tools_keep_the_call_lines_without_previews():
    view, published, _ = make_view(fmt="text", interval=0, previews=False)
    view.start()
    view.tool(run_of(result="a long result"))
    view.tool(run_of("get_time", {}, error="ValueError: no clock"))
    view.note("something")
    assert published[-1] == ('[tool] get_weather(city="Paris") ✓\n[tool] get_time() ✗ '
                             "ValueError\n(note: something)")


def test_previews_are_one_line_and_short():
    from ipychat.calls import PREVIEW_CHARS, call_line

    line = call_line(run_of(arguments="not json at all", result="line one\nline two " * 50))
    assert line.startswith("get_weather(not json at all) → line one line two line one")
    assert "\n" not in line and len(line.split(" → ")[1]) == PREVIEW_CHARS


def test_terminal_view_prints_each_call_as_it_starts_and_ends():
    out = io.StringIO()
    view = TerminalView(stream=out, stats=False)
    dim, reset = TerminalView.DIM, TerminalView.RESET
    run = run_of()
    view.tool(run)
    out.write("printed by the tool\n")
    run.result = "21"
    view.tool(run)
    bad = run_of("f", {}, error="bad arguments for f: 'x' is required")
    view.tool(bad)
    assert out.getvalue() == (f'\n{dim}[tool] get_weather(city="Paris"){reset}printed by the '
                              f"tool\n{dim} → 21{reset}\n\n{dim}[tool] f() ✗ bad arguments for "
                              f"f: 'x' is required{reset}\n")
