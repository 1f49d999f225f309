// The webcam for the page: a stream from the chosen camera (or the default one), the cameras present,
// and a frame of the preview as an image file.

import { useEffect, useRef, useState } from 'react';

export interface CameraChoice {
  deviceId: string;
  label: string;
}

/**
 * Opens the camera `deviceId` names (the default one when null) while `open` is true, and shows it in
 * the returned video ref. Lists the cameras once one is open (browsers name them only then). `stream`
 * is null until the preview has shown its first frame, so nothing is captured from an empty preview.
 */
export function useCamera(open: boolean, deviceId: string | null) {
  const video = useRef<HTMLVideoElement>(null);
  const [stream, setStream] = useState<MediaStream | null>(null);
  const [cameras, setCameras] = useState<CameraChoice[]>([]);
  const [problem, setProblem] = useState<string | null>(null);

  useEffect(() => {
    if (!open) return;
    let current: MediaStream | null = null;
    let cancelled = false;
    setProblem(null);
    navigator.mediaDevices
      // Without a choice, the camera facing away from the user where there are two (phones).
      .getUserMedia({
        video: deviceId ? { deviceId: { exact: deviceId } } : { facingMode: 'environment' },
        audio: false,
      })
      .then(async (opened) => {
        if (cancelled) return opened.getTracks().forEach((track) => track.stop());
        current = opened;
        setStream(opened);
        const devices = await navigator.mediaDevices.enumerateDevices();
        const inputs = devices.filter((device) => device.kind === 'videoinput');
        setCameras(
          inputs.map((device, i) => ({ deviceId: device.deviceId, label: device.label || `Camera ${i + 1}` })),
        );
      })
      .catch((error: unknown) => {
        if (!cancelled)
          setProblem(
            `The camera could not be opened (${(error as Error).message}). Allow camera access for this site, or use files instead.`,
          );
      });
    return () => {
      cancelled = true;
      current?.getTracks().forEach((track) => track.stop());
      setStream(null);
    };
  }, [open, deviceId]);

  // Ready once the preview has shown its first frame: a frame taken before would be black or empty.
  const [ready, setReady] = useState(false);
  useEffect(() => {
    setReady(false);
    const element = video.current;
    if (!element) return;
    element.srcObject = stream;
    if (!stream) return;
    let cancelled = false;
    const shown = () => !cancelled && setReady(true);
    if ('requestVideoFrameCallback' in element) {
      const handle = element.requestVideoFrameCallback(shown);
      return () => {
        cancelled = true;
        element.cancelVideoFrameCallback(handle);
      };
    }
    (element as HTMLVideoElement).addEventListener('playing', shown, { once: true });
    return () => {
      cancelled = true;
    };
  }, [stream]);

  /** The camera in use: the one chosen, or the one the browser opened. */
  const activeId = deviceId ?? stream?.getVideoTracks()[0]?.getSettings().deviceId ?? null;
  return { video, stream: ready ? stream : null, cameras, activeId, problem };
}

/** The preview's current frame as a JPEG file, or null before the first frame. */
export function captureFrame(video: HTMLVideoElement | null, name: string): Promise<File | null> {
  if (!video?.videoWidth) return Promise.resolve(null);
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext('2d')?.drawImage(video, 0, 0);
  return new Promise((resolve) =>
    canvas.toBlob((blob) => resolve(blob && new File([blob], name, { type: 'image/jpeg' })), 'image/jpeg', 0.92),
  );
}
