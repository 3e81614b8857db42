import type { Readable } from "node:stream";
import sharp from "sharp";

// libvips' operation cache keeps decoded images around for reuse; a server that transcodes an
// occasional upload gains nothing from it and would only grow.
sharp.cache(false);

const MAX_ROUNDS = 8;
const MIN_WIDTH = 64;

/**
 * Re-encodes an image as a JPEG of at most `maxBytes` (EXIF orientation applied, metadata —
 * location included — dropped, transparency flattened on white; an animation keeps its first
 * frame). The original is decoded once, straight into a size the budget can plausibly hold; then
 * width and quality step down until the result fits. Returns null when even the smallest
 * attempt does not fit.
 */
export async function shrinkImage(input: Readable, maxBytes: number): Promise<Buffer | null> {
  // JPEG photos need roughly 1–4 bits per pixel: a first long edge of √(4·budget) pixels lands
  // near the budget and keeps the first decode's output small.
  const edge = Math.max(640, Math.min(4096, Math.round(Math.sqrt(maxBytes * 4))));
  const first = sharp({ failOn: "none" })
    .rotate()
    .resize({ width: edge, height: edge, fit: "inside", withoutEnlargement: true })
    .flatten({ background: "#ffffff" })
    .jpeg({ quality: 85, mozjpeg: true });
  input.on("error", (err) => first.destroy(err));
  const base = await input.pipe(first).toBuffer({ resolveWithObject: true });
  let out = base.data;
  let width = base.info.width;
  let quality = 85;
  for (let round = 0; round < MAX_ROUNDS && out.length > maxBytes; round++) {
    // Bytes scale roughly with the pixel count, i.e. with the square of the width.
    width = Math.max(MIN_WIDTH, Math.floor(width * Math.min(0.9, Math.sqrt(maxBytes / out.length) * 0.95)));
    quality = Math.max(50, quality - 7);
    out = await sharp(base.data).resize({ width }).jpeg({ quality, mozjpeg: true }).toBuffer();
    if (width === MIN_WIDTH) break;
  }
  return out.length <= maxBytes ? out : null;
}

/** The name a transcoded file goes out under: same stem, .jpg. */
export function jpegName(filename: string): string {
  const dot = filename.lastIndexOf(".");
  return `${dot > 0 ? filename.slice(0, dot) : filename}.jpg`;
}
