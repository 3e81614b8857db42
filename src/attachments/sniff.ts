import { fileTypeFromBuffer } from "file-type";
import { ApiError } from "../errors.js";

/** How many leading bytes the type detection looks at (file-type's own sample size). */
export const SNIFF_BYTES = 4100;

/**
 * Natively executable programs are refused whatever they are called: a messaging API has no
 * business relaying them, and some channels (iMessage) would hand them to the recipient as is.
 */
const EXECUTABLES = new Set([
  "application/x-msdownload", // Windows .exe / .dll
  "application/x-elf",
  "application/x-mach-binary",
  "application/vnd.android.package-archive",
  "application/java-vm",
  "application/java-archive",
  "application/x-shockwave-flash",
  "application/x-ms-regedit",
]);

/**
 * Text has no magic bytes, so for text the client's declared type may refine "text/plain" — but
 * only to these inert types. Anything a browser would run (HTML, SVG, XML, JavaScript) is stored
 * as text/plain, so a signed URL can never serve active content from this server's origin.
 */
const TEXT_TYPES = new Set(["text/plain", "text/csv", "text/vcard", "text/x-vcard", "text/calendar", "text/markdown"]);

/**
 * The MIME type of a file, decided by its first bytes — never by its name or the client's
 * Content-Type (a PNG called notes.txt is image/png):
 * - a signature file-type knows → that type (executables → 415 unsupported_media_type);
 * - otherwise text (valid UTF-8 without control characters) → the declared type when it is an
 *   inert text type, else text/plain;
 * - otherwise application/octet-stream: any other document is allowed and sent as a file.
 */
export async function sniffMime(head: Buffer, declared: string | null): Promise<string> {
  const detected = await fileTypeFromBuffer(head);
  if (detected) {
    if (EXECUTABLES.has(detected.mime)) throw new ApiError("unsupported_media_type", "Executable files cannot be uploaded.");
    return detected.mime;
  }
  if (looksLikeText(head)) {
    const base = declared?.split(";")[0]?.trim().toLowerCase() ?? "";
    return TEXT_TYPES.has(base) ? base : "text/plain";
  }
  return "application/octet-stream";
}

const decoder = new TextDecoder("utf-8", { fatal: true });

function looksLikeText(head: Buffer): boolean {
  for (const b of head) {
    // NUL and the C0 controls other than tab, newlines, form feed and escape do not occur in text.
    if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d && b !== 0x0c && b !== 0x1b) return false;
  }
  try {
    // `stream: true`: the sample may end in the middle of a multi-byte character.
    decoder.decode(head, { stream: true });
    decoder.decode();
    return true;
  } catch {
    return false;
  }
}

/** A client's file name made safe to store and to echo: no path, no control characters, ≤ 255. */
export function safeFilename(raw: string | undefined | null, fallback = "attachment"): string {
  const base = (raw ?? "").split(/[/\\]/).pop() ?? "";
  const clean = [...base].filter((ch) => ch.charCodeAt(0) >= 0x20 && ch.charCodeAt(0) !== 0x7f).join("").trim().slice(0, 255);
  return clean === "" || clean === "." || clean === ".." ? fallback : clean;
}
