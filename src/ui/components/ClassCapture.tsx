// Adding images to a class from the webcam (single photos, or a burst while the button is held) and
// from the clipboard. The frames take the same path as dropped files: decoded, thumbnailed, stored.

import { useEffect, useRef, useState, type ClipboardEvent, type PointerEvent } from 'react';
import { captureFrame, useCamera } from '../camera';
import { useDatasetStore } from '../stores/dataset';
import './capture.css';

/** Frames a held button records per second. */
const BURST_FRAMES_PER_SECOND = 5;

export function ClassCapture({ classId, className }: { classId: string; className: string }) {
  const addImages = useDatasetStore((s) => s.addImages);
  const busy = useDatasetStore((s) => s.adding !== null);
  const [open, setOpen] = useState(false);
  const [chosen, setChosen] = useState<string | null>(null);
  const { video, stream, cameras, activeId, problem } = useCamera(open, chosen);
  const [added, setAdded] = useState(0);
  const [recording, setRecording] = useState(0);
  const [pasteHint, setPasteHint] = useState<string | null>(null);
  const burst = useRef<{ timer: ReturnType<typeof setInterval>; frames: Promise<File | null>[] } | null>(null);

  const frameName = (index = 0) => `camera-${new Date().toISOString().replace(/[:.]/g, '-')}-${index}.jpg`;
  const add = async (files: File[]) => {
    if (files.length === 0) return;
    await addImages(classId, files);
    setAdded((count) => count + files.length);
  };

  const startBurst = () => {
    if (burst.current || !stream) return;
    const frames: Promise<File | null>[] = [];
    const take = () => {
      frames.push(captureFrame(video.current, frameName(frames.length)));
      setRecording(frames.length);
    };
    take();
    burst.current = { timer: setInterval(take, 1000 / BURST_FRAMES_PER_SECOND), frames };
  };
  const stopBurst = async () => {
    const current = burst.current;
    if (!current) return;
    burst.current = null;
    clearInterval(current.timer);
    setRecording(0);
    // One addition for the whole burst: it is stored in one transaction.
    await add((await Promise.all(current.frames)).filter((file): file is File => file !== null));
  };

  // A burst held while the camera closes or the card goes away ends there, without adding its frames.
  useEffect(
    () => () => {
      if (burst.current) clearInterval(burst.current.timer);
      burst.current = null;
    },
    [],
  );

  /**
   * Hold to record with a mouse, a pen or a finger: the button captures the pointer, so the burst lasts
   * until the button is let go wherever the pointer goes meanwhile (a layout shift as the camera starts,
   * a shaking hand), and a touch the browser takes over for scrolling (pointercancel) ends it too.
   */
  const pointerDown = (event: PointerEvent<HTMLButtonElement>) => {
    if (event.button !== 0) return;
    event.currentTarget.setPointerCapture(event.pointerId);
    startBurst();
  };

  /** The button: asks the browser for the clipboard, which it may refuse (then Ctrl+V still works). */
  const pasteFromClipboard = async () => {
    setPasteHint(null);
    try {
      const items = await navigator.clipboard.read();
      const images = items.flatMap((item) =>
        item.types.filter((type) => type.startsWith('image/')).map((type) => ({ item, type })),
      );
      const files = await Promise.all(
        images.map(
          async ({ item, type }, i) =>
            new File([await item.getType(type)], `pasted-${i}.${type.slice('image/'.length)}`, { type }),
        ),
      );
      if (files.length === 0) setPasteHint('The clipboard holds no image.');
      await add(files);
    } catch {
      setPasteHint('This browser does not let the page read the clipboard: focus this button and press Ctrl+V (⌘V).');
    }
  };

  const paste = (event: ClipboardEvent) => {
    const files = [...event.clipboardData.files].filter((file) => file.type.startsWith('image/'));
    if (files.length === 0) return;
    event.preventDefault();
    void add(files);
  };

  return (
    <div className="class-capture" onPaste={paste}>
      {open ? (
        <>
          {cameras.length > 0 && (
            <select
              aria-label={`Camera for ${className}`}
              value={activeId ?? ''}
              onChange={(event) => setChosen(event.target.value)}
            >
              {cameras.map((camera) => (
                <option key={camera.deviceId} value={camera.deviceId}>
                  {camera.label}
                </option>
              ))}
            </select>
          )}
          <video ref={video} autoPlay playsInline muted aria-label={`Camera preview for ${className}`} />
          <div className="actions">
            <button
              type="button"
              disabled={!stream || busy}
              onClick={() => void captureFrame(video.current, frameName()).then((file) => add(file ? [file] : []))}
            >
              Take photo
            </button>
            <button
              type="button"
              disabled={!stream || busy}
              className="hold-to-record"
              onPointerDown={pointerDown}
              onPointerUp={() => void stopBurst()}
              onPointerCancel={() => void stopBurst()}
              onLostPointerCapture={() => void stopBurst()}
              onContextMenu={(event) => event.preventDefault()}
              onBlur={() => void stopBurst()}
              onKeyDown={(event) => (event.key === ' ' || event.key === 'Enter') && !event.repeat && startBurst()}
              onKeyUp={(event) => (event.key === ' ' || event.key === 'Enter') && void stopBurst()}
            >
              {recording ? `Recording… ${recording}` : 'Hold to record'}
            </button>
            <button type="button" className="secondary" onClick={() => setOpen(false)}>
              Close camera
            </button>
          </div>
        </>
      ) : (
        <button
          type="button"
          className="secondary small"
          disabled={!navigator.mediaDevices?.getUserMedia}
          onClick={() => setOpen(true)}
          aria-label={`Use the camera for ${className}`}
        >
          Camera
        </button>
      )}
      <button
        type="button"
        className="secondary small"
        aria-label={`Paste an image into ${className}`}
        title="Or focus it and press Ctrl+V (⌘V)"
        onClick={() => void pasteFromClipboard()}
      >
        Paste
      </button>
      {added > 0 && (
        <span className="muted" role="status" data-testid="captured-count">
          {added} {added === 1 ? 'image' : 'images'} added from the camera or the clipboard
        </span>
      )}
      {pasteHint && <p className="muted">{pasteHint}</p>}
      {problem && <p className="invalid">{problem}</p>}
    </div>
  );
}
