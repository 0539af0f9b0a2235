// One drawing interface, two back-ends: a canvas (the screen and PNG export) and an SVG document
// (SVG export). Views draw once through a Painter; lines are batched by colour and opacity so
// that tens of thousands of weights cost a few hundred path operations, never one element each.

export interface TextStyle {
  color: string;
  size: number; // px
  align?: 'left' | 'right' | 'center';
  bold?: boolean;
  rotate?: number; // degrees, about the anchor
}

export interface Painter {
  // opacity in [0, 1]; batched by (color, opacity quantized to 1/255).
  line(x1: number, y1: number, x2: number, y2: number, color: string, opacity: number, width: number): void;
  rect(x: number, y: number, w: number, h: number, color: string, opacity: number): void;
  text(x: number, y: number, s: string, style: TextStyle): void; // y = vertical middle
  flush(): void;
}

export const FONT = '"DejaVu Sans", "Noto Sans CJK SC", "Noto Color Emoji", system-ui, sans-serif';

function bucketKey(color: string, opacity: number, width: number): string {
  return `${color}|${Math.round(Math.min(1, opacity) * 255)}|${width}`;
}

export class CanvasPainter implements Painter {
  private batches = new Map<string, number[]>();
  constructor(private ctx: CanvasRenderingContext2D) {}
  line(x1: number, y1: number, x2: number, y2: number, color: string, opacity: number, width: number): void {
    if (opacity * 255 < 0.5) return;
    const key = bucketKey(color, opacity, width);
    let b = this.batches.get(key);
    if (!b) this.batches.set(key, (b = []));
    b.push(x1, y1, x2, y2);
  }
  rect(x: number, y: number, w: number, h: number, color: string, opacity: number): void {
    this.ctx.globalAlpha = Math.min(1, opacity);
    this.ctx.fillStyle = color;
    this.ctx.fillRect(x, y, w, h);
    this.ctx.globalAlpha = 1;
  }
  text(x: number, y: number, s: string, st: TextStyle): void {
    const c = this.ctx;
    c.save();
    c.font = `${st.bold ? 'bold ' : ''}${st.size}px ${FONT}`;
    c.fillStyle = st.color;
    c.textAlign = st.align ?? 'left';
    c.textBaseline = 'middle';
    c.translate(x, y);
    if (st.rotate) c.rotate((st.rotate * Math.PI) / 180);
    c.fillText(s, 0, 0);
    c.restore();
  }
  flush(): void {
    const c = this.ctx;
    c.lineCap = 'round';
    for (const [key, pts] of this.batches) {
      const [color, a, w] = key.split('|');
      c.strokeStyle = color;
      c.globalAlpha = Number(a) / 255;
      c.lineWidth = Number(w);
      c.beginPath();
      for (let t = 0; t < pts.length; t += 4) {
        c.moveTo(pts[t], pts[t + 1]);
        c.lineTo(pts[t + 2], pts[t + 3]);
      }
      c.stroke();
    }
    c.globalAlpha = 1;
    this.batches.clear();
  }
}

export function escapeXml(s: string): string {
  // Characters XML 1.0 cannot carry at all (NUL, most C0 controls, lone surrogates) become U+FFFD.
  const clean = s.replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
  return clean.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

const r2 = (v: number) => Math.round(v * 100) / 100;

export class SvgPainter implements Painter {
  private out: string[] = [];
  private batches = new Map<string, string[]>();
  constructor(readonly width: number, readonly height: number, background: string) {
    this.out.push(`<rect width="${r2(width)}" height="${r2(height)}" fill="${escapeXml(background)}"/>`);
  }
  line(x1: number, y1: number, x2: number, y2: number, color: string, opacity: number, width: number): void {
    if (opacity * 255 < 0.5) return;
    const key = bucketKey(color, opacity, width);
    let b = this.batches.get(key);
    if (!b) this.batches.set(key, (b = []));
    b.push(`M${r2(x1)} ${r2(y1)}L${r2(x2)} ${r2(y2)}`);
  }
  rect(x: number, y: number, w: number, h: number, color: string, opacity: number): void {
    this.out.push(`<rect x="${r2(x)}" y="${r2(y)}" width="${r2(w)}" height="${r2(h)}" fill="${escapeXml(color)}"${opacity < 1 ? ` fill-opacity="${r2(opacity)}"` : ''}/>`);
  }
  text(x: number, y: number, s: string, st: TextStyle): void {
    const anchor = st.align === 'right' ? 'end' : st.align === 'center' ? 'middle' : 'start';
    const rot = st.rotate ? ` transform="rotate(${st.rotate} ${r2(x)} ${r2(y)})"` : '';
    this.out.push(`<text x="${r2(x)}" y="${r2(y)}" dominant-baseline="central" text-anchor="${anchor}" font-size="${st.size}"${st.bold ? ' font-weight="bold"' : ''} fill="${escapeXml(st.color)}" xml:space="preserve"${rot}>${escapeXml(s)}</text>`);
  }
  flush(): void {
    for (const [key, parts] of this.batches) {
      const [color, a, w] = key.split('|');
      this.out.push(`<path d="${parts.join('')}" stroke="${escapeXml(color)}" stroke-opacity="${r2(Number(a) / 255)}" stroke-width="${w}" stroke-linecap="round" fill="none"/>`);
    }
    this.batches.clear();
  }
  document(): string {
    this.flush();
    return `<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="${r2(this.width)}" height="${r2(this.height)}" viewBox="0 0 ${r2(this.width)} ${r2(this.height)}" font-family='${FONT.replace(/'/g, '')}'>\n${this.out.join('\n')}\n</svg>\n`;
  }
}
