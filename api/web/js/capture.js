// Frame sources (camera or a local video file) played in a <video>, and the JPEG encoder.

export const JPEG_QUALITY = 0.8;
export const CAMERA_CONSTRAINTS = Object.freeze({
  audio: false,
  video: { width: { ideal: 640 }, height: { ideal: 480 } },
});

/** Plays the camera in `video`; returns the function that releases it. */
export async function openCamera(video) {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new Error("this browser gives no camera access here (a secure context is needed)");
  }
  const stream = await navigator.mediaDevices.getUserMedia(CAMERA_CONSTRAINTS);
  video.srcObject = stream;
  await play(video);
  return () => {
    for (const track of stream.getTracks()) track.stop();
    video.srcObject = null;
  };
}

/** Plays a local video file in `video`, looping; returns the function that releases it. */
export async function openFile(video, file) {
  const url = URL.createObjectURL(file);
  video.srcObject = null;
  video.src = url;
  video.loop = true;
  try {
    await play(video);
  } catch (error) {
    URL.revokeObjectURL(url);
    video.removeAttribute("src");
    throw error;
  }
  return () => {
    video.pause();
    video.removeAttribute("src");
    video.load();
    URL.revokeObjectURL(url);
  };
}

async function play(video) {
  video.muted = true;
  video.playsInline = true;
  try {
    await video.play();
  } catch (error) {
    const reason = video.error?.message || error.message;
    throw new Error(`cannot play this source: ${reason}`);
  }
}

/** Grabs the current video frame: the bitmap (kept to draw the result on) and its JPEG. */
export class FrameGrabber {
  #canvas = new OffscreenCanvas(1, 1);
  #context = this.#canvas.getContext("2d");

  constructor(video, quality = JPEG_QUALITY) {
    this.video = video;
    this.quality = quality;
  }

  get ready() {
    return this.video.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA && this.video.videoWidth > 0;
  }

  /** {bitmap, jpeg: Blob}, or null while the source has no frame yet. */
  async grab() {
    if (!this.ready) return null;
    const bitmap = await createImageBitmap(this.video);
    if (this.#canvas.width !== bitmap.width || this.#canvas.height !== bitmap.height) {
      this.#canvas.width = bitmap.width;
      this.#canvas.height = bitmap.height;
    }
    this.#context.drawImage(bitmap, 0, 0);
    const jpeg = await this.#canvas.convertToBlob({ type: "image/jpeg", quality: this.quality });
    return { bitmap, jpeg };
  }
}
