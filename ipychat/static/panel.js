// The page side of ipychat's chat panel (ipychat/panel_view.py): an anywidget
// ES module, no build step. The kernel sends safe Markdown (ipychat's
// safe_markdown, as for %%chat); it is drawn by the front end's own Markdown
// renderer, the one %%chat outputs use, and never with innerHTML here. Model
// text only ever reaches the page through that renderer or textContent.

const FOLLOW_SLACK = 32; // px from the bottom that still count as "at the bottom"
let views = 0; // for ids unique in the page (the model box's datalist)

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

function labelled(text, control) {
  return h("label", { class: "ipychat-field" }, h("span", { text }), control);
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

class Panel {
  constructor(model, el) {
    this.model = model;
    this.items = new Map(); // message id -> {data, el, ...}
    this.stick = true; // follow new text unless the user scrolled up
    this.pending = null; // the question sent, until the kernel says it took it
    this.rendermime = model.widget_manager && model.widget_manager.rendermime;
    this.build(el);
    this.bind();
    this.onMessage = (msg) => this.received(msg);
    model.on("msg:custom", this.onMessage);
    model.send({ kind: "hello" }); // the kernel answers with every message
  }

  build(el) {
    const id = `ipychat-models-${++views}-${Math.random().toString(36).slice(2, 8)}`;
    this.provider = h("select", { class: "ipychat-provider" });
    this.modelBox = h("input", { class: "ipychat-model", list: id, placeholder: "provider default" });
    this.modelList = h("datalist", { id });
    this.refresh = h("button", { class: "ipychat-refresh", title: "Ask the server for its models again", text: "↻" });
    this.baseUrl = h("input", { class: "ipychat-base-url" });
    this.temperature = h("input", { class: "ipychat-temperature", type: "number", min: "0", max: "2", step: "0.05" });
    this.maxTokens = h("input", { class: "ipychat-max-tokens", type: "number", min: "0", step: "1", placeholder: "default" });
    this.reasoning = h("select", { class: "ipychat-reasoning" });
    for (const [value, text] of [["", "model default"], ["off", "off"], ["low", "low"], ["medium", "medium"], ["high", "high"]]) {
      this.reasoning.append(h("option", { value, text }));
    }
    this.system = h("input", { class: "ipychat-system", placeholder: "optional" });
    this.modelsNote = h("div", { class: "ipychat-models-note" });
    this.scope = h("span", { class: "ipychat-scope" });
    this.toolsNote = h("span", { class: "ipychat-tools" });
    this.newChat = h("button", { class: "ipychat-new", text: "New chat" });
    this.exportButton = h("button", { class: "ipychat-export", text: "Export", title: "Write the conversation to a Markdown file" });
    this.list = h("div", { class: "ipychat-messages", role: "log", "aria-live": "polite" });
    this.empty = h("div", { class: "ipychat-empty", text: "No messages yet: ask below." });
    this.list.append(this.empty);
    this.status = h("div", { class: "ipychat-status", role: "status" });
    this.prompt = h("textarea", { class: "ipychat-prompt", rows: "3", placeholder: "Ask a question. Enter sends, Shift+Enter starts a new line, ↑ in an empty box brings back the last question." });
    this.send = h("button", { class: "ipychat-send", text: "Send", title: "Send the question (Enter)" });
    this.stop = h("button", { class: "ipychat-stop", text: "Stop", title: "Stop the answer that is streaming" });
    const model = h("span", { class: "ipychat-model-wrap" }, this.modelBox, this.refresh, this.modelList);
    this.more = h("summary");
    // Shortcuts off for the whole panel: keys typed here are the panel's, not the notebook's.
    this.root = h("div", { class: "ipychat-panel", "data-lm-suppress-shortcuts": "true" },
      h("div", { class: "ipychat-header" }, h("strong", { text: "ipychat" }), this.scope, this.toolsNote,
        h("span", { class: "ipychat-spacer" }), this.newChat, this.exportButton),
      h("div", { class: "ipychat-settings" }, labelled("Provider", this.provider), labelled("Model", model)),
      this.modelsNote,
      h("details", { class: "ipychat-more" }, this.more,
        h("div", { class: "ipychat-settings" },
          labelled("Base URL", this.baseUrl), labelled("Temperature", this.temperature),
          labelled("Max tokens", this.maxTokens), labelled("Reasoning", this.reasoning),
          labelled("System prompt", this.system)),
        h("div", { class: "ipychat-hint", text: this.model.get("hint") })),
      this.list, this.status,
      h("div", { class: "ipychat-input" }, this.prompt,
        h("div", { class: "ipychat-buttons" }, this.send, this.stop)));
    el.append(this.root);
  }

  // -- controls <-> synced state ------------------------------------------------

  bind() {
    const m = this.model;
    const set = (name, value) => { m.set(name, value); m.save_changes(); };
    this.sync = {
      providers: () => {
        this.provider.replaceChildren(...m.get("providers").map(([text, value]) => h("option", { value, text })));
        this.provider.value = m.get("provider");
      },
      provider: () => { this.provider.value = m.get("provider"); },
      model: () => this.show(this.modelBox, m.get("model")),
      models: () => this.modelList.replaceChildren(...m.get("models").map((value) => h("option", { value }))),
      models_note: () => { this.modelsNote.textContent = m.get("models_note"); },
      base_url: () => this.show(this.baseUrl, m.get("base_url")),
      base_url_placeholder: () => { this.baseUrl.placeholder = m.get("base_url_placeholder"); },
      temperature: () => this.show(this.temperature, String(m.get("temperature"))),
      max_tokens: () => this.show(this.maxTokens, m.get("max_tokens") ? String(m.get("max_tokens")) : ""),
      reasoning: () => { this.reasoning.value = m.get("reasoning"); },
      system: () => this.show(this.system, m.get("system")),
      scope: () => { this.scope.textContent = m.get("scope"); },
      tool_names: () => {
        const names = m.get("tool_names");
        this.toolsNote.textContent = names.length ? `· tools: ${names.join(", ")}` : "";
      },
      settings: () => this.showSettings(),
      status: () => this.showStatus(),
      status_kind: () => this.showStatus(),
      busy: () => this.showBusy(),
      stoppable: () => this.showBusy(),
    };
    for (const [name, update] of Object.entries(this.sync)) {
      m.on(`change:${name}`, update);
      update();
    }
    for (const name of ["base_url", "temperature", "max_tokens", "reasoning", "system"]) {
      m.on(`change:${name}`, this.sync.settings);
    }
    this.provider.addEventListener("change", () => set("provider", this.provider.value));
    this.modelBox.addEventListener("change", () => set("model", this.modelBox.value));
    this.baseUrl.addEventListener("change", () => set("base_url", this.baseUrl.value));
    this.system.addEventListener("change", () => set("system", this.system.value));
    this.reasoning.addEventListener("change", () => set("reasoning", this.reasoning.value));
    this.temperature.addEventListener("change", () => {
      const value = Number.parseFloat(this.temperature.value);
      if (Number.isFinite(value)) set("temperature", Math.min(Math.max(value, 0), 2));
      this.sync.temperature();
    });
    this.maxTokens.addEventListener("change", () => {
      const value = Number.parseInt(this.maxTokens.value || "0", 10);
      set("max_tokens", Number.isFinite(value) && value > 0 ? value : 0);
      this.sync.max_tokens();
    });
    this.refresh.addEventListener("click", () => m.send({ kind: "models" }));
    this.newChat.addEventListener("click", () => m.send({ kind: "new" }));
    this.exportButton.addEventListener("click", () => m.send({ kind: "export" }));
    this.send.addEventListener("click", () => this.ask());
    this.stop.addEventListener("click", () => m.send({ kind: "stop" }));
    this.prompt.addEventListener("keydown", (event) => this.key(event));
    // JupyterLab 4 (and Notebook 7) cancel the line break of Shift+Enter in anything
    // inside a cell, so that Shift+Enter only runs the cell: a guard it adds to the
    // key's target after our listeners. Here Shift+Enter is a new line (the panel
    // suppresses the notebook's shortcuts), so the guard must not run.
    this.prompt.addEventListener("beforeinput", (event) => {
      if (event.inputType === "insertLineBreak") event.stopImmediatePropagation();
    });
    this.list.addEventListener("scroll", () => { this.stick = this.atBottom(); });
  }

  show(input, value) {
    if (document.activeElement !== input) input.value = value; // never under the typing hand
  }

  // The folded settings say which of them are set, so nothing changes unseen.
  showSettings() {
    const m = this.model;
    const set = [];
    if (m.get("base_url")) set.push(m.get("base_url"));
    set.push(`temperature ${m.get("temperature")}`);
    if (m.get("max_tokens")) set.push(`max ${m.get("max_tokens")} tokens`);
    if (m.get("reasoning")) set.push(`reasoning ${m.get("reasoning")}`);
    if (m.get("system")) set.push("system prompt set");
    this.more.textContent = `Settings: ${set.join(" · ")}`;
  }

  showStatus() {
    this.status.className = `ipychat-status ipychat-status-${this.model.get("status_kind")}`;
    this.status.textContent = this.model.get("status");
  }

  showBusy() {
    this.send.disabled = this.model.get("busy");
    this.newChat.disabled = this.model.get("busy");
    this.stop.disabled = !this.model.get("stoppable");
  }

  // -- asking -----------------------------------------------------------------

  key(event) {
    if (event.isComposing) return; // an input method is still composing a character
    const plain = !event.shiftKey && !event.altKey && !event.ctrlKey && !event.metaKey;
    if (event.key === "Enter" && plain) {
      event.preventDefault();
      this.ask();
    } else if (event.key === "ArrowUp" && plain && this.prompt.value === "") {
      const last = this.lastQuestion();
      if (last) {
        event.preventDefault();
        this.prompt.value = last;
        this.prompt.setSelectionRange(last.length, last.length);
      }
    }
  }

  ask() {
    if (this.model.get("busy")) return; // Send is off: Enter is too (the text stays)
    this.pending = this.prompt.value;
    this.model.send({ kind: "ask", text: this.prompt.value });
  }

  lastQuestion() {
    const ids = [...this.items.keys()].reverse();
    const id = ids.find((key) => this.items.get(key).data.role === "user");
    return id === undefined ? "" : this.items.get(id).data.text || "";
  }

  // -- messages ---------------------------------------------------------------

  received(msg) {
    if (msg.kind === "sync") {
      for (const item of this.items.values()) item.el.remove();
      this.items.clear();
      this.stick = true;
      for (const message of msg.messages) this.upsert(message);
    } else if (msg.kind === "upsert") {
      this.upsert(msg.message);
    } else if (msg.kind === "asked") {
      if (msg.ok && this.prompt.value === this.pending) this.prompt.value = "";
      this.pending = null;
    }
    this.empty.hidden = this.items.size > 0;
    this.follow();
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
    this.model.off("msg:custom", this.onMessage);
    for (const [name, update] of Object.entries(this.sync)) this.model.off(`change:${name}`, update);
    for (const name of ["base_url", "temperature", "max_tokens", "reasoning", "system"]) {
      this.model.off(`change:${name}`, this.sync.settings);
    }
    for (const item of this.items.values()) {
      for (const slot of item.slots) if (slot.renderer) slot.renderer.dispose();
      if (item.reasoning && item.reasoning.slot.renderer) item.reasoning.slot.renderer.dispose();
    }
    this.root.remove();
  }
}

export default {
  render({ model, el }) {
    const panel = new Panel(model, el);
    return () => panel.dispose();
  },
};
