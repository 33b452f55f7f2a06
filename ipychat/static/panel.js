// The page side of ipychat's chat panel (ipychat/panel_view.py): an anywidget
// ES module, no build step: messages.js (the message list) comes first in the
// same module. This part holds the controls, their synced state, and asking.

let views = 0; // for ids unique in the page (the model box's datalist)

function labelled(text, control) {
  return h("label", { class: "ipychat-field" }, h("span", { text }), control);
}

class Panel {
  constructor(model, el) {
    this.model = model;
    this.pending = null; // the question sent, until the kernel says it took it
    this.messages = new Messages(model.widget_manager && model.widget_manager.rendermime);
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
      this.messages.list, this.status,
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
      const last = this.messages.lastQuestion();
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

  // -- messages ---------------------------------------------------------------

  received(msg) {
    if (msg.kind === "sync") {
      this.messages.sync(msg.messages);
    } else if (msg.kind === "upsert") {
      this.messages.upsert(msg.message);
    } else if (msg.kind === "asked") {
      if (msg.ok && this.prompt.value === this.pending) this.prompt.value = "";
      this.pending = null;
    }
    this.messages.settled();
  }

  dispose() {
    this.model.off("msg:custom", this.onMessage);
    for (const [name, update] of Object.entries(this.sync)) this.model.off(`change:${name}`, update);
    for (const name of ["base_url", "temperature", "max_tokens", "reasoning", "system"]) {
      this.model.off(`change:${name}`, this.sync.settings);
    }
    this.messages.dispose();
    this.root.remove();
  }
}

export default {
  render({ model, el }) {
    const panel = new Panel(model, el);
    return () => panel.dispose();
  },
};
