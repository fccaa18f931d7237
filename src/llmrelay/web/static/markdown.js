/* LR.markdown(text) -> DocumentFragment: a small Markdown subset rendered safely.
 *
 * A model's answer is untrusted. Nothing here parses HTML: every piece of text becomes a text
 * node, and the only elements made are the ones listed below, with no attributes but a link's
 * href (http/https only, checked with URL) and rel. So `<script>` or `<img onerror=…>` in an
 * answer shows as the literal text it is.
 *
 * Blocks: paragraphs (line breaks kept), ``` fenced code ```, # headings, - / * / 1. lists,
 * > quotes. Inline: `code`, **bold**, *italic* / _italic_, [text](https://…).
 */


const INLINE = /`([^`\n]+)`|\*\*([^*\n]+?)\*\*|\[([^\]\n]+)\]\(([^)\s]+)\)|\*([^*\s][^*\n]*?)\*|\b_([^_\s][^_\n]*?)_\b/;

function safeHref(raw) {
  try {
    const url = new URL(raw);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch (_) {
    return null;
  }
}

function inline(text, into, depth = 0) {
  let rest = text;
  while (rest) {
    const m = depth < 4 ? INLINE.exec(rest) : null;
    if (!m) { into.append(document.createTextNode(rest)); return; }
    if (m.index) into.append(document.createTextNode(rest.slice(0, m.index)));
    const [whole, code, bold, linkText, linkUrl, em1, em2] = m;
    if (code !== undefined) {
      const c = document.createElement("code"); c.textContent = code; into.append(c);
    } else if (bold !== undefined) {
      const b = document.createElement("strong"); inline(bold, b, depth + 1); into.append(b);
    } else if (linkText !== undefined) {
      const href = safeHref(linkUrl);
      if (href) {
        const a = document.createElement("a");
        a.href = href; a.rel = "noopener noreferrer nofollow"; a.target = "_blank";
        inline(linkText, a, depth + 1);
        into.append(a);
      } else {
        into.append(document.createTextNode(whole));
      }
    } else {
      const e = document.createElement("em"); inline(em1 !== undefined ? em1 : em2, e, depth + 1); into.append(e);
    }
    rest = rest.slice(m.index + whole.length);
  }
}

function lines(into, textLines) {
  textLines.forEach((line, i) => {
    if (i) into.append(document.createElement("br"));
    inline(line, into);
  });
}

const FENCE = /^\s*(```|~~~)\s*([\w+-]*)\s*$/;
const HEADING = /^(#{1,6})\s+(.*)$/;
const BULLET = /^\s*[-*+]\s+(.*)$/;
const NUMBERED = /^\s*\d{1,9}[.)]\s+(.*)$/;
const QUOTE = /^\s*>\s?(.*)$/;

function markdown(text) {
  const out = document.createDocumentFragment();
  const src = String(text || "").replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  while (i < src.length) {
    const line = src[i];
    if (!line.trim()) { i++; continue; }
    const fence = FENCE.exec(line);
    if (fence) {
      const body = [];
      i++;
      while (i < src.length && !(src[i].trim().startsWith(fence[1]))) body.push(src[i++]);
      i++; // the closing fence (or the end)
      const pre = document.createElement("pre");
      const code = document.createElement("code");
      if (fence[2]) code.dataset.lang = fence[2];
      code.textContent = body.join("\n");
      pre.append(code);
      out.append(pre);
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      const h = document.createElement(`h${Math.min(6, heading[1].length + 2)}`);
      inline(heading[2], h);
      out.append(h);
      i++;
      continue;
    }
    const listKind = BULLET.test(line) ? BULLET : NUMBERED.test(line) ? NUMBERED : null;
    if (listKind) {
      const list = document.createElement(listKind === BULLET ? "ul" : "ol");
      while (i < src.length && listKind.test(src[i])) {
        const li = document.createElement("li");
        inline(listKind.exec(src[i])[1], li);
        list.append(li);
        i++;
      }
      out.append(list);
      continue;
    }
    if (QUOTE.test(line)) {
      const quoted = [];
      while (i < src.length && QUOTE.test(src[i])) quoted.push(QUOTE.exec(src[i++])[1]);
      const q = document.createElement("blockquote");
      lines(q, quoted);
      out.append(q);
      continue;
    }
    const para = [];
    while (i < src.length && src[i].trim() && !FENCE.test(src[i]) && !HEADING.test(src[i]) &&
           !BULLET.test(src[i]) && !NUMBERED.test(src[i]) && !QUOTE.test(src[i])) para.push(src[i++]);
    const p = document.createElement("p");
    lines(p, para);
    out.append(p);
  }
  return out;
}

export { markdown };
