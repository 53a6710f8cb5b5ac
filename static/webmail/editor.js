// Rich-text compose (issue 17): mounts Quill (from npm, served under /static/vendor/quill/,
// loaded only when a rich composition is open) on #rich-editor. The plain textarea stays in
// the form for browsers without script; once the editor runs it is hidden and
// rich_active=1 tells the server to use body_html, which it cleans again (webmail.rich_text).
// Pictures dropped or pasted as files are checked here first: one over the limit is refused
// with a message and nothing typed is touched.
(() => {
  "use strict";
  let loading = null;

  function loadQuill(box) {
    if (window.Quill) return Promise.resolve();
    if (!loading) {
      loading = new Promise((resolve, reject) => {
        const css = document.createElement("link");
        css.rel = "stylesheet";
        css.href = box.dataset.quillCss;
        document.head.append(css);
        const script = document.createElement("script");
        script.src = box.dataset.quillJs;
        script.onload = resolve;
        script.onerror = reject;
        document.head.append(script);
      });
    }
    return loading;
  }

  const megabytes = (n) => `${Math.round(n / 1048576)} MB`;

  function mount() {
    const box = document.getElementById("rich-editor");
    if (!box || box.dataset.mounted) return;
    box.dataset.mounted = "1";
    loadQuill(box).then(() => {
      const html = document.getElementById("compose-body-html");
      const text = document.getElementById("compose-body");
      const active = document.getElementById("compose-rich-active");
      const error = document.getElementById("rich-error");
      const limit = Number(box.dataset.imageLimit || 0);
      const showError = (message) => {
        error.textContent = message;
        error.hidden = !message;
      };
      const quill = new window.Quill("#rich-body", {
        theme: "snow",
        modules: {
          toolbar: [["bold", "italic", "underline", "strike"], ["link", "blockquote"],
                    [{ list: "ordered" }, { list: "bullet" }], ["image"], ["clean"]],
          uploader: {
            mimetypes: ["image/png", "image/jpeg", "image/gif", "image/webp"],
            handler(range, files) {
              const big = files.find((f) => f.size > limit);
              if (big) {
                showError(`The picture ${big.name} is ${megabytes(big.size)}; pictures in the text ` +
                          `may be up to ${megabytes(limit)}. Attach it as a file instead.`);
                return;
              }
              showError("");
              Promise.all(files.map((file) => new Promise((resolve) => {
                const reader = new FileReader();
                reader.onload = () => resolve(reader.result);
                reader.readAsDataURL(file);
              }))).then((urls) => {
                let index = range.index;
                urls.forEach((url) => {
                  quill.insertEmbed(index, "image", url, "user");
                  index += 1;
                });
                quill.setSelection(index, 0, "user");
              });
            },
          },
        },
      });
      // A picture pasted or dropped as HTML (a data: URL) bypasses the uploader above: the
      // same limits apply here, and what else was pasted is kept. Without this a 30 MB
      // picture made the whole form too large for the server to read.
      const Delta = window.Quill.import("delta");
      const htmlLimit = Number(box.dataset.htmlLimit || 0);
      let loaded = false;
      quill.clipboard.addMatcher("IMG", (node, delta) => {
        const src = node.getAttribute("src") || "";
        if (!loaded || !src.startsWith("data:")) return delta;
        const size = Math.floor((src.length - src.indexOf(",") - 1) * 3 / 4);
        if (size > limit) {
          showError(`A pasted picture is ${megabytes(size)}; pictures in the text may be up ` +
                    `to ${megabytes(limit)}. Attach it as a file instead.`);
          return new Delta();
        }
        if (htmlLimit && html.value.length + src.length > htmlLimit) {
          showError(`The pictures in the text would go over ${megabytes(htmlLimit)} in all. ` +
                    "Attach this one as a file instead.");
          return new Delta();
        }
        return delta;
      });
      quill.setContents(quill.clipboard.convert({ html: html.value }), "silent");
      loaded = true;
      box.quill = quill;
      const sync = () => {
        // getSemanticHTML writes every space as &nbsp; (Quill 2), which stops mail readers
        // from wrapping lines: plain spaces say the same.
        html.value = quill.getSemanticHTML().replace(/&nbsp;/g, " ");
        text.value = quill.getText();
      };
      quill.on("text-change", () => {
        sync();
        // The form's autosave listens for input events; the editor's changes count too.
        text.dispatchEvent(new Event("input", { bubbles: true }));
      });
      sync();
      text.hidden = true;
      const label = document.querySelector('label[for="compose-body"]');
      if (label) label.hidden = true;
      active.value = "1";
      box.hidden = false;
      box.dataset.ready = "1";
    }).catch(() => {
      // The editor did not load: the plain textarea stays and is what is sent.
      box.dataset.mounted = "";
    });
  }

  const signatureOf = (address, key) => {
    const item = [...document.querySelectorAll("#identity-signatures li")]
      .find((li) => li.dataset.address === address);
    return item ? item.dataset[key] || "" : "";
  };

  // Rich text: the same swap in the editor. The signature is found as text after a "-- "
  // line: Quill keeps no markers, so the old signature's text (as Quill renders its HTML)
  // must be there unchanged; then it is replaced by the new one's HTML.
  function swapRichSignature(quill, previousHtml, nextHtml) {
    const Delta = window.Quill.import("delta");
    // A signature as editor content without the line ends around it, so swapping one
    // leaves the lines around it as they were.
    const contentOf = (signature) => {
      const ops = signature ? quill.clipboard.convert({ html: signature }).ops.slice() : [];
      const trim = (i, re) => {
        if (ops[i] && typeof ops[i].insert === "string") {
          const insert = ops[i].insert.replace(re, "");
          if (insert) ops[i] = { ...ops[i], insert }; else ops.splice(i, 1);
        }
      };
      trim(ops.length - 1, /\n+$/);
      trim(0, /^\n+/);
      return new Delta(ops);
    };
    const textOf = (delta) => delta.ops
      .map((op) => (typeof op.insert === "string" ? op.insert : "\uFFFC")).join("");
    const oldContent = contentOf(previousHtml);
    const old = textOf(oldContent);
    const fresh = contentOf(nextHtml);
    const text = quill.getText();
    // Quill drops the space after "--" at the end of a line, so both forms count.
    const found = /(^|\n)--( )?\n/.exec(text);
    if (found) {
      const at = found.index + found[1].length;
      const start = found.index + found[0].length;
      if (!old || text.slice(start, start + old.length) !== old) return;
      const change = fresh.ops.length
        ? new Delta().retain(start).delete(old.length).concat(fresh)
        // No signature for the new address: the separator goes too.
        : new Delta().retain(at).delete(start - at + old.length);
      quill.updateContents(change, "user");
    } else if (!old && fresh.ops.length) {
      const end = quill.getLength() - 1;
      quill.updateContents(new Delta().retain(end).insert("\n-- \n").concat(fresh), "user");
    }
  }

  // Choosing another From address swaps the signature under the "-- " line (RFC 3676 §4.3)
  // when it is still the one the previous address put there: in the plain text, or in the
  // rich-text editor (its HTML signature).
  document.addEventListener("change", (event) => {
    const select = event.target;
    if (select.id !== "compose-from") return;
    const initial = (select.querySelector("option[selected]") || select.options[0]).value;
    const previousAddress = select.dataset.previousAddress ?? initial;
    select.dataset.previousAddress = select.value;
    const box = document.getElementById("rich-editor");
    if (box) {
      if (box.quill) {
        swapRichSignature(box.quill, signatureOf(previousAddress, "signatureHtml"),
                          signatureOf(select.value, "signatureHtml"));
      }
      return;
    }
    const body = document.getElementById("compose-body");
    const previous = signatureOf(previousAddress, "signature");
    const next = signatureOf(select.value, "signature");
    const old = (previous || "").replace(/\r\n/g, "\n").replace(/^\n+|\n+$/g, "");
    const fresh = next.replace(/\r\n/g, "\n").replace(/^\n+|\n+$/g, "");
    const text = body.value.replace(/\r\n/g, "\n");
    const marker = old ? `\n-- \n${old}\n` : "";
    if (old && text.includes(marker)) {
      body.value = text.replace(marker, fresh ? `\n-- \n${fresh}\n` : "\n");
    } else if (!old && fresh && !text.includes("\n-- \n")) {
      body.value = `${text.replace(/\n+$/, "")}\n\n-- \n${fresh}\n`;
    } else {
      return;
    }
    body.dispatchEvent(new Event("input", { bubbles: true }));
  });

  document.addEventListener("DOMContentLoaded", mount);
  document.addEventListener("htmx:afterSettle", mount);
})();
