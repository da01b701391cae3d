// The texts read so far: deduplicated, newest first, each with the time it was first seen.

/** Every text a pipeline result carries: yolo_ocr detections' `text`, ocr's `texts`. */
export function textsOf(result) {
  const found = [];
  for (const item of [...(result.detections ?? []), ...(result.texts ?? [])]) {
    const text = typeof item.text === "string" ? item.text.trim() : "";
    if (text) found.push(text);
  }
  return found;
}

export class Reads {
  #byText = new Map();

  /** Records `texts` seen at `when` (a Date); returns those never seen before. */
  add(texts, when) {
    const fresh = [];
    for (const text of texts) {
      const known = this.#byText.get(text);
      if (known) {
        known.lastSeen = when;
        known.count += 1;
      } else {
        const read = { text, firstSeen: when, lastSeen: when, count: 1 };
        this.#byText.set(text, read);
        fresh.push(read);
      }
    }
    return fresh;
  }

  clear() {
    this.#byText.clear();
  }

  get size() {
    return this.#byText.size;
  }

  /** Newest first. */
  list() {
    return [...this.#byText.values()].reverse();
  }

  toJSON() {
    return this.list().map((r) => ({
      text: r.text,
      first_seen: r.firstSeen.toISOString(),
      last_seen: r.lastSeen.toISOString(),
      count: r.count,
    }));
  }

  toCSV() {
    const rows = this.toJSON().map((r) => [r.text, r.first_seen, r.last_seen, r.count]);
    return [["text", "first_seen", "last_seen", "count"], ...rows]
      .map((row) => row.map(csvField).join(","))
      .join("\r\n") + "\r\n";
  }
}

function csvField(value) {
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** Hands `content` to the browser as a file download. */
export function download(filename, content, type) {
  const url = URL.createObjectURL(new Blob([content], { type }));
  const link = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 0);
}
