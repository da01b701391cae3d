// Draws one analysed frame and its result: boxes, labels, confidences and the text read.

const BOX_COLOUR = "#00e676";
const TEXT_COLOUR = "#ffd600";
const LABEL_INK = "#000";

/** Draws `image` (the frame that was sent) and `result` on the canvas of `context`. */
export function drawResult(context, image, result) {
  const { canvas } = context;
  if (canvas.width !== image.width || canvas.height !== image.height) {
    canvas.width = image.width;
    canvas.height = image.height;
  }
  context.drawImage(image, 0, 0);
  const scale = Math.max(1, canvas.width / 640);
  context.lineWidth = 2 * scale;
  context.font = `${Math.round(14 * scale)}px system-ui, sans-serif`;
  context.textBaseline = "bottom";
  for (const detection of result.detections ?? []) drawDetection(context, detection, scale);
  for (const text of result.texts ?? []) drawText(context, text, scale);
}

export function detectionLabel(detection) {
  const label = `${detection.label} ${Math.round(detection.confidence * 100)}%`;
  return detection.text ? `${label} “${detection.text}”` : label;
}

function drawDetection(context, detection, scale) {
  const [x1, y1, x2, y2] = detection.box;
  context.strokeStyle = detection.text ? TEXT_COLOUR : BOX_COLOUR;
  context.strokeRect(x1, y1, x2 - x1, y2 - y1);
  tag(context, detectionLabel(detection), x1, y1, context.strokeStyle, scale);
}

function drawText(context, item, scale) {
  const points = item.polygon ?? [];
  if (points.length === 0) return;
  context.strokeStyle = TEXT_COLOUR;
  context.beginPath();
  points.forEach(([x, y], i) => (i === 0 ? context.moveTo(x, y) : context.lineTo(x, y)));
  context.closePath();
  context.stroke();
  const [x, y] = points[0];
  tag(context, `${item.text} ${Math.round(item.confidence * 100)}%`, x, y, TEXT_COLOUR, scale);
}

/** A filled label above (or, at the top edge, inside) the point. */
function tag(context, text, x, y, colour, scale) {
  const height = Math.round(18 * scale);
  const width = context.measureText(text).width + 8 * scale;
  const top = y - height < 0 ? y : y - height;
  context.fillStyle = colour;
  context.fillRect(x, top, width, height);
  context.fillStyle = LABEL_INK;
  context.fillText(text, x + 4 * scale, top + height - 3 * scale);
}
