// markdown.js - a small, safe markdown renderer for model output.
//
// Safety comes first and is structural: every character of the input is
// HTML-escaped before any markdown rule looks at it, and the rules only ever
// wrap escaped text in a fixed set of tags. No attribute takes raw input
// except a link's href, which must be http(s) or mailto and is escaped again
// for the attribute. So model output can never inject markup or script.
//
// Subset: fenced code blocks (``` with an optional language; an unclosed fence
// while streaming runs to the end), inline code, headings, bold, italic,
// strikethrough, links, unordered/ordered lists (one level), blockquotes,
// horizontal rules and paragraphs with line breaks. Cost: linear in the input;
// the page re-renders a streaming message at most once per animation frame.

const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ESC[c]);
}

function emphasis(s) {
  s = s.replace(/\*\*([^*\n]+?)\*\*/g, '<strong>$1</strong>');
  s = s.replace(/__([^_\n]+?)__/g, '<strong>$1</strong>');
  s = s.replace(/(^|[^*\w])\*([^*\s][^*\n]*?)\*(?!\w)/g, '$1<em>$2</em>');
  s = s.replace(/(^|[^_\w])_([^_\s][^_\n]*?)_(?!\w)/g, '$1<em>$2</em>');
  return s.replace(/~~([^~\n]+?)~~/g, '<del>$1</del>');
}

// Inline rules on already-escaped text. Code spans and links are cut out
// first (\u0000 / \u0001 placeholders, stripped from the input beforehand) so
// the emphasis rules touch neither code nor a link's href.
function inline(esc) {
  const held = [];
  const hold = (html, mark) => { held.push(html); return `${mark}${held.length - 1}${mark}`; };
  let s = esc.replace(/`([^`\n]+)`/g, (_, c) => hold(`<code>${c}</code>`, '\u0000'));
  // [text](url): the url was escaped with the rest (so &quot; cannot close the
  // attribute); only safe schemes are linked, anything else stays text.
  s = s.replace(/\[([^\]\n]+)\]\(([^)\s]+)\)/g, (m, text, url) => {
    if (!/^(https?:\/\/|mailto:)/i.test(url)) return m;
    return hold(`<a href="${url}" target="_blank" rel="noopener noreferrer">${emphasis(text)}</a>`, '\u0001');
  });
  s = emphasis(s);
  // links may hold code spans: restore links first, then code
  s = s.replace(/\u0001(\d+)\u0001/g, (_, i) => held[+i]);
  return s.replace(/\u0000(\d+)\u0000/g, (_, i) => held[+i]);
}

function codeBlock(lang, lines) {
  const cls = lang ? ` class="lang-${lang.replace(/[^\w+-]/g, '')}"` : '';
  const label = lang ? `<span class="code-lang">${lang}</span>` : '<span class="code-lang"></span>';
  return `<div class="code-block"><div class="code-head">${label}` +
    '<button type="button" class="copy-code" title="Copy code">Copy</button></div>' +
    `<pre><code${cls}>${lines.join('\n')}</code></pre></div>`;
}

// Render markdown source to an HTML string that is safe to assign to innerHTML.
export function renderMarkdown(src) {
  const clean = String(src ?? '').replace(/[\u0000\u0001]/g, '').replace(/\r\n?/g, '\n');
  const lines = escapeHtml(clean).split('\n');
  const out = [];
  let para = [];
  let list = null; // { tag: 'ul'|'ol', items: [] }
  let quote = [];

  const flushPara = () => {
    if (para.length) out.push(`<p>${para.map(inline).join('<br>')}</p>`);
    para = [];
  };
  const flushList = () => {
    if (list) out.push(`<${list.tag}>${list.items.map((i) => `<li>${inline(i)}</li>`).join('')}</${list.tag}>`);
    list = null;
  };
  const flushQuote = () => {
    if (quote.length) out.push(`<blockquote>${quote.map(inline).join('<br>')}</blockquote>`);
    quote = [];
  };
  const flushAll = () => { flushPara(); flushList(); flushQuote(); };

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fence = /^\s*```\s*([\w+#.-]*)\s*$/.exec(line);
    if (fence) {
      flushAll();
      const body = [];
      i++;
      while (i < lines.length && !/^\s*```\s*$/.test(lines[i])) body.push(lines[i++]);
      out.push(codeBlock(fence[1], body));
      continue;
    }
    let m;
    if (/^\s*$/.test(line)) { flushAll(); continue; }
    if ((m = /^(#{1,6})\s+(.*)$/.exec(line))) {
      flushAll();
      const n = m[1].length;
      out.push(`<h${n}>${inline(m[2])}</h${n}>`);
      continue;
    }
    if (/^\s*([-*_])(\s*\1){2,}\s*$/.test(line)) { flushAll(); out.push('<hr>'); continue; }
    if ((m = /^\s*&gt;\s?(.*)$/.exec(line))) { flushPara(); flushList(); quote.push(m[1]); continue; }
    if ((m = /^\s*[-*+]\s+(.*)$/.exec(line)) || (m = /^\s*\d{1,9}[.)]\s+(.*)$/.exec(line))) {
      const tag = /^\s*\d/.test(line) ? 'ol' : 'ul';
      flushPara(); flushQuote();
      if (list && list.tag !== tag) flushList();
      if (!list) list = { tag, items: [] };
      list.items.push(m[1]);
      continue;
    }
    if (list && /^\s{2,}\S/.test(line)) { list.items[list.items.length - 1] += ' ' + line.trim(); continue; }
    flushList(); flushQuote();
    para.push(line);
  }
  flushAll();
  return out.join('');
}
