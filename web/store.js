// store.js - conversations and settings in localStorage.
//
// One JSON document per key, rewritten whole on each save: conversations are
// small (text only) and saves happen per finished message, not per token.
// A corrupt or foreign document is ignored rather than crashing the page.

const CONV_KEY = 'parley.conversations.v1';
const SETTINGS_KEY = 'parley.settings.v1';

export const DEFAULT_SETTINGS = Object.freeze({
  systemPrompt: '',
  temperature: 0.7,
  top_p: 0.95,
  max_tokens: 1024,
  speedMode: false,
  reasoning: true,
  apiKey: '',
});

function load(key) {
  try {
    const s = localStorage.getItem(key);
    return s ? JSON.parse(s) : null;
  } catch {
    return null;
  }
}

function save(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
    return true;
  } catch {
    return false; // quota or storage disabled: the page keeps working in memory
  }
}

export function loadSettings() {
  const s = load(SETTINGS_KEY);
  const out = { ...DEFAULT_SETTINGS };
  if (s && typeof s === 'object') {
    for (const k of Object.keys(DEFAULT_SETTINGS)) {
      if (typeof s[k] === typeof DEFAULT_SETTINGS[k]) out[k] = s[k];
    }
  }
  return out;
}

export function saveSettings(s) {
  return save(SETTINGS_KEY, s);
}

function newId() {
  return `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}

// A conversation: { id, title, created, updated, messages: [Message] }.
// Message: { role: 'user'|'assistant', content, reasoning?, metrics?, stopped?, error? }.
export class ConversationStore {
  constructor() {
    const d = load(CONV_KEY);
    this.list = Array.isArray(d?.conversations)
      ? d.conversations.filter((c) => c && typeof c.id === 'string' && Array.isArray(c.messages))
      : [];
    this.currentId = this.list.some((c) => c.id === d?.currentId) ? d.currentId : null;
  }

  persist() {
    return save(CONV_KEY, { version: 1, currentId: this.currentId, conversations: this.list });
  }

  get current() {
    return this.list.find((c) => c.id === this.currentId) || null;
  }

  // Newest first, as the sidebar shows them.
  sorted() {
    return [...this.list].sort((a, b) => b.updated - a.updated);
  }

  create(title = 'New chat') {
    const now = Date.now();
    const c = { id: newId(), title, created: now, updated: now, messages: [] };
    this.list.push(c);
    this.currentId = c.id;
    this.persist();
    return c;
  }

  select(id) {
    if (this.list.some((c) => c.id === id)) {
      this.currentId = id;
      this.persist();
    }
  }

  rename(id, title) {
    const c = this.list.find((x) => x.id === id);
    if (c && title.trim()) {
      c.title = title.trim().slice(0, 120);
      c.titled = true;
      this.persist();
    }
  }

  remove(id) {
    this.list = this.list.filter((c) => c.id !== id);
    if (this.currentId === id) this.currentId = this.sorted()[0]?.id ?? null;
    this.persist();
  }

  touch(c) {
    c.updated = Date.now();
    // the first user message names an untitled conversation
    if (!c.titled) {
      const first = c.messages.find((m) => m.role === 'user');
      if (first) c.title = first.content.replace(/\s+/g, ' ').trim().slice(0, 48) || 'New chat';
    }
    this.persist();
  }
}
