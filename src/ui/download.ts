// Saving a file from the page: an object URL on a temporary link, clicked.

export function saveFile(
  data: Blob | Uint8Array<ArrayBuffer> | string,
  fileName: string,
  type = 'application/octet-stream',
): void {
  const blob = data instanceof Blob ? data : new Blob([data], { type });
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = fileName;
  link.click();
  // The download has started by the time the click returns; the URL is no longer needed soon after.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** "Block-LoRA r2 · 3 classes" -> "block-lora-r2-3-classes". */
export function fileSlug(name: string): string {
  return (
    name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '') || 'adapter'
  );
}
