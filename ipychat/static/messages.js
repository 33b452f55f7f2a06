// The message list of ipychat's chat panel (panel.js holds the controls): the
// messages the kernel sends, kept by id and drawn part by part. Loaded before
// panel.js, in one ES module (PanelView._esm joins them; no build step). The
// kernel sends safe Markdown (ipychat's safe_markdown, as for %%chat); it is
// drawn by the front end's own Markdown renderer, the one %%chat outputs use,
// and never with innerHTML here. Model text only ever reaches the page through
// that renderer or textContent.

const FOLLOW_SLACK = 32; // px from the bottom that still count as "at the bottom"

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else el.setAttribute(key, value);
  }
  el.append(...children);
  return el;
}

async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No clipboard API (a page not served from localhost or https): the old way.
    const area = h("textarea", { class: "ipychat-offscreen" });
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  const label = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = label; }, 1200);
}

class Messages {
  constructor(rendermime) {
    this.rendermime = rendermime;
    this.items = new Map(); // message id -> {data, el, ...}
    this.stick = true; // follow new text unless the user scrolled up
    this.list = h("div", { class: "ipychat-messages", role: "log", "aria-live": "polite" });
    this.empty = h("div", { class: "ipychat-empty", text: "No messages yet: ask below." });
    this.list.append(this.empty);
    this.list.addEventListener("scroll", () => { this.stick = this.atBottom(); });
  }

  // Every message, whole (a view was drawn, or New chat).
  sync(messages) {
    for (const item of this.items.values()) item.el.remove();
    this.items.clear();
    this.stick = true;
    for (const message of messages) this.upsert(message);
  }

  // After the kernel's messages: the empty note, and the newest text in view.
  settled() {
    this.empty.hidden = this.items.size > 0;
    this.follow();
  }

  lastQuestion() {
    const ids = [...this.items.keys()].reverse();
    const id = ids.find((key) => this.items.get(key).data.role === "user");
    return id === undefined ? "" : this.items.get(id).data.text || "";
  }

  upsert(message) {
    let item = this.items.get(message.id);
    if (!item) {
      item = this.create(message);
      this.items.set(message.id, item);
      this.list.append(item.el);
    }
    const { parts, from, ...rest } = message;
    Object.assign(item.data, rest);
    if (parts) item.data.parts = item.data.parts.slice(0, from || 0).concat(parts);
    this.draw(item);
  }

  create(message) {
    const role = message.role === "user" ? "ipychat-user" : "ipychat-assistant ipychat-answer";
    const item = { data: { parts: [] }, slots: [], opened: null, callsOpened: null };
    item.who = h("span", { class: "ipychat-who" });
    item.copy = h("button", { class: "ipychat-copy", text: "Copy", title: "Copy this message's text" });
    item.copy.addEventListener("click", () => copyText(item.data.text || "", item.copy));
    item.body = h("div", { class: "ipychat-body" });
    item.mark = h("div", { class: "ipychat-mark" });
    item.error = h("div", { class: "ipychat-error" });
    item.stats = h("div", { class: "ipychat-stats" });
    item.el = h("div", { class: `ipychat-message ${role}`, "data-id": message.id },
      h("div", { class: "ipychat-meta" }, item.who, h("span", { class: "ipychat-spacer" }), item.copy),
      item.body, item.mark, item.error, item.stats);
    return item;
  }

  draw(item) {
    const d = item.data;
    const streaming = d.state === "streaming";
    item.el.classList.toggle("ipychat-streaming", streaming);
    item.who.textContent = streaming ? `${d.who} · answering…` : d.who;
    item.copy.hidden = d.text === undefined;
    this.drawReasoning(item, streaming && d.parts.join("") === "");
    while (item.slots.length > d.parts.length) item.slots.pop().el.remove();
    d.parts.forEach((md, i) => {
      if (!item.slots[i]) {
        item.slots[i] = { el: h("div", { class: "ipychat-part" }), want: null, done: null, busy: false };
        item.body.append(item.slots[i].el);
      }
      this.render(item.slots[i], md, item);
    });
    this.drawCalls(item, streaming);
    item.body.classList.toggle("ipychat-waiting", streaming && !d.parts.join("") && !d.reasoning);
    this.settle(item);
    item.mark.textContent = d.mark ? `(${d.mark})` : "";
    item.error.textContent = d.error || "";
    item.stats.textContent = d.stats || "";
  }

  drawReasoning(item, thinking) {
    const d = item.data;
    if (!d.reasoning) {
      if (item.reasoning) item.reasoning.el.remove();
      item.reasoning = null;
      return;
    }
    if (!item.reasoning) {
      const summary = h("summary");
      const slot = { el: h("div", { class: "ipychat-part" }), want: null, done: null, busy: false };
      const el = h("details", { class: "ipychat-reasoning" }, summary, slot.el);
      // The user's own choice wins over the automatic fold, across updates.
      summary.addEventListener("click", () => { item.opened = !el.open; });
      item.reasoning = { el, summary, slot };
      item.body.before(el);
    }
    const words = `${(d.words || 0).toLocaleString()} words`;
    item.reasoning.summary.textContent = thinking ? `Thinking… (${words})` : `Reasoning (${words})`;
    item.reasoning.el.open = item.opened === null ? thinking : item.opened;
    this.render(item.reasoning.slot, d.reasoning, item);
  }

  // Tool call lines: plain text (textContent), open while the answer streams.
  drawCalls(item, streaming) {
    const lines = item.data.calls || [];
    if (!lines.length) {
      if (item.calls) item.calls.el.remove();
      item.calls = null;
      return;
    }
    if (!item.calls) {
      const summary = h("summary");
      const pre = h("pre", { class: "ipychat-call-lines" });
      const el = h("details", { class: "ipychat-calls" }, summary, pre);
      summary.addEventListener("click", () => { item.callsOpened = !el.open; });
      item.calls = { el, summary, pre };
      item.body.after(el);
    }
    item.calls.summary.textContent = `${lines.length} tool call${lines.length === 1 ? "" : "s"}`;
    item.calls.pre.textContent = lines.join("\n");
    item.calls.el.open = item.callsOpened === null ? streaming : item.callsOpened;
  }

  // "ipychat-drawn": every part of the message shows its latest text (for tests,
  // and for anyone who needs to know the page has caught up).
  settle(item) {
    const slots = item.reasoning ? [...item.slots, item.reasoning.slot] : item.slots;
    item.el.classList.toggle("ipychat-drawn", slots.every((slot) => !slot.busy && slot.done === slot.want));
  }

  // One render at a time per slot; a newer text waiting is drawn next, the
  // ones in between are skipped.
  async render(slot, md, item) {
    slot.want = md;
    if (slot.busy) return;
    slot.busy = true;
    try {
      while (slot.done !== slot.want) {
        const next = slot.want;
        await this.markdown(slot, next);
        slot.done = next;
        this.decorate(slot.el);
        this.follow();
      }
    } finally {
      slot.busy = false;
      this.settle(item);
    }
  }

  async markdown(slot, md) {
    if (this.rendermime && !slot.plain) {
      try {
        if (!slot.renderer) {
          slot.renderer = this.rendermime.createRenderer("text/markdown");
          slot.el.append(slot.renderer.node);
        }
        // Untrusted: the front end's sanitizer runs too, behind safe_markdown.
        await slot.renderer.renderModel({ data: { "text/markdown": md }, metadata: {}, trusted: false, setData() {} });
        const typesetter = this.rendermime.latexTypesetter;
        if (typesetter) typesetter.typeset(slot.renderer.node);
        return;
      } catch (error) {
        console.warn("ipychat: Markdown renderer failed, showing text", error);
        slot.plain = true;
        slot.el.replaceChildren();
      }
    }
    // No renderer (a front end other than JupyterLab or Notebook 7): the Markdown as text.
    slot.el.classList.add("ipychat-plain");
    slot.el.textContent = md;
  }

  decorate(el) {
    for (const pre of el.querySelectorAll("pre")) {
      if (pre.parentElement.classList.contains("ipychat-code")) continue;
      const button = h("button", { class: "ipychat-copy-code", text: "Copy", title: "Copy this code" });
      button.addEventListener("click", () => copyText(pre.textContent, button));
      const box = h("div", { class: "ipychat-code" });
      pre.before(box);
      box.append(pre, button);
    }
  }

  atBottom() {
    const list = this.list;
    return list.scrollHeight - list.scrollTop - list.clientHeight <= FOLLOW_SLACK;
  }

  follow() {
    if (this.stick) this.list.scrollTop = this.list.scrollHeight;
  }

  dispose() {
    for (const item of this.items.values()) {
      for (const slot of item.slots) if (slot.renderer) slot.renderer.dispose();
      if (item.reasoning && item.reasoning.slot.renderer) item.reasoning.slot.renderer.dispose();
    }
  }
}
