/* LR.Attachments: the images that go with the next message.
 *
 * An "Attach image" button (over a hidden file input) and pasting an image into the message box add
 * images; each shows as a thumbnail with a remove button until the message is sent, then goes as an
 * image part with a data: URL. Only PNG, JPEG, GIF and WebP (what every provider takes), and no more
 * than fits in one request body.
 *
 * setSupport({ok, reason}): images are offered only when the agent's serving model takes them (its
 * capability flags from GET /api/ai/models); otherwise the button is disabled and its tooltip says why.
 */

import * as LR from "./app.js";
import { el } from "./app.js";

const TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"];
const MAX_TOTAL = 2.5 * 1024 * 1024;  // raw bytes: base64 makes it about 3.4 MB of the 4 MB body limit

function readAsDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error || new Error("could not read the file"));
    reader.readAsDataURL(file);
  });
}

class Attachments {
  constructor(pasteTarget) {
    this.items = [];  // {url, name, size}
    this.support = { ok: false, reason: "" };
    this.file = el("input", { type: "file", id: "chat-image", class: "visually-hidden", accept: TYPES.join(","),
                              multiple: true, tabindex: -1, "aria-hidden": "true" });
    this.button = el("button", { type: "button", class: "secondary attach", "aria-label": "Attach image",
                                 onclick: () => this.file.click() }, "Attach image");
    this.control = el("span", { class: "attach-wrap" }, this.button, this.file);
    this.list = el("ul", { class: "attachments plain", "aria-label": "Images to send", hidden: true });
    this.file.addEventListener("change", () => {
      this.add([...this.file.files]);
      this.file.value = "";
    });
    pasteTarget.addEventListener("paste", (e) => {
      const files = [...(e.clipboardData ? e.clipboardData.files : [])].filter((f) => f.type.startsWith("image/"));
      if (!files.length) return;
      e.preventDefault();
      this.add(files);
    });
  }

  setSupport(support) {
    this.support = support;
    this.button.disabled = !support.ok;
    const why = support.ok ? "Attach an image (or paste one into the message box)" : support.reason;
    this.button.title = why;
    this.control.title = why;  // a disabled button shows no tooltip in every browser: its wrapper does
    this.control.dataset.support = support.ok ? "yes" : "no";
  }

  total() {
    return this.items.reduce((n, i) => n + i.size, 0);
  }

  async add(files) {
    if (!this.support.ok) {
      LR.toast(this.support.reason, "error");
      return;
    }
    for (const file of files) {
      if (!TYPES.includes(file.type)) {
        LR.toast(`${file.name || "That file"} is not a PNG, JPEG, GIF or WebP image.`, "error");
        continue;
      }
      if (this.total() + file.size > MAX_TOTAL) {
        LR.toast(`${file.name || "The image"} does not fit: images may add up to ${MAX_TOTAL / 1048576} MB per message.`,
          "error");
        continue;
      }
      try {
        const url = await readAsDataUrl(file);
        this.items.push({ url, name: file.name || "pasted image", size: file.size });
      } catch (err) {
        LR.showError(err);
      }
    }
    this.draw();
  }

  draw() {
    this.list.hidden = this.items.length === 0;
    this.list.replaceChildren(...this.items.map((item, i) =>
      el("li", { class: "attachment" },
        el("img", { src: item.url, alt: item.name, class: "thumb" }),
        el("button", { type: "button", class: "icon remove-image", "aria-label": `Remove ${item.name}`,
                       onclick: () => { this.items.splice(i, 1); this.draw(); } }, "✕"))));
  }

  /** The images as parts of the message, and the composer emptied of them. */
  take() {
    const parts = this.items.map((i) => ({ type: "image", url: i.url }));
    this.items = [];
    this.draw();
    return parts;
  }
}

/** An image part as a thumbnail: inline images show; an http(s) one is a link (the page loads no
 * image from elsewhere: its content security policy allows none). */
function imageView(part) {
  const url = part.url || (part.data ? `data:${part.mediaType || "image/png"};base64,${part.data}` : "");
  if (url.startsWith("data:image/")) return el("img", { src: url, alt: "image", class: "thumb" });
  if (/^https?:\/\//i.test(url)) {
    return el("a", { href: url, rel: "noopener noreferrer", target: "_blank", class: "image-link" }, "image: " + url);
  }
  return el("span", { class: "image-link" }, "image");
}

export { Attachments, imageView };
