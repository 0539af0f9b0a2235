// A canvas the size of its viewport over a scrollable area the size of the content: each frame
// draws only what is visible, so 1,024 tokens cost no more per frame than 40 (and the canvas
// never exceeds the browser's size limits).
import { CanvasPainter, Painter } from './painter';

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface Drawable {
  size(): { width: number; height: number };
  paint(p: Painter, view: Rect, ctx: CanvasRenderingContext2D | null): void;
}

export class ScrollCanvas {
  readonly root: HTMLDivElement;
  readonly canvas: HTMLCanvasElement;
  readonly scroller: HTMLDivElement;
  private spacer: HTMLDivElement;
  private pending = false;
  lastFrameMs = 0;
  constructor(private content: Drawable, private background: () => string, className = '') {
    this.root = document.createElement('div');
    this.root.className = `viewport ${className}`;
    this.canvas = document.createElement('canvas');
    this.scroller = document.createElement('div');
    this.scroller.className = 'scroller';
    this.spacer = document.createElement('div');
    this.spacer.className = 'spacer';
    this.scroller.appendChild(this.spacer);
    this.root.append(this.canvas, this.scroller);
    this.scroller.addEventListener('scroll', () => this.request());
    new ResizeObserver(() => this.request()).observe(this.root);
  }
  // Pointer position in content coordinates.
  point(e: MouseEvent): { x: number; y: number } {
    const r = this.scroller.getBoundingClientRect();
    return { x: e.clientX - r.left + this.scroller.scrollLeft, y: e.clientY - r.top + this.scroller.scrollTop };
  }
  // Where a content point is on the page (tests hover through this).
  clientPoint(x: number, y: number): { x: number; y: number } {
    const r = this.scroller.getBoundingClientRect();
    return { x: r.left + x - this.scroller.scrollLeft, y: r.top + y - this.scroller.scrollTop };
  }
  scrollIntoView(x: number, y: number): void {
    const s = this.scroller;
    if (y < s.scrollTop + 20 || y > s.scrollTop + s.clientHeight - 20) s.scrollTop = Math.max(0, y - s.clientHeight / 2);
    if (x < s.scrollLeft + 20 || x > s.scrollLeft + s.clientWidth - 20) s.scrollLeft = Math.max(0, x - s.clientWidth / 2);
  }
  request(): void {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }
  draw(): void {
    const t0 = performance.now();
    const { width, height } = this.content.size();
    this.spacer.style.width = `${width}px`;
    this.spacer.style.height = `${height}px`;
    const vw = this.scroller.clientWidth, vh = this.scroller.clientHeight;
    const dpr = window.devicePixelRatio || 1;
    if (this.canvas.width !== Math.round(vw * dpr) || this.canvas.height !== Math.round(vh * dpr)) {
      this.canvas.width = Math.round(vw * dpr);
      this.canvas.height = Math.round(vh * dpr);
      this.canvas.style.width = `${vw}px`;
      this.canvas.style.height = `${vh}px`;
    }
    const ctx = this.canvas.getContext('2d')!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = this.background();
    ctx.fillRect(0, 0, vw, vh);
    const sx = this.scroller.scrollLeft, sy = this.scroller.scrollTop;
    ctx.translate(-sx, -sy);
    const p = new CanvasPainter(ctx);
    this.content.paint(p, { x: sx, y: sy, w: vw, h: vh }, ctx);
    p.flush();
    this.lastFrameMs = performance.now() - t0;
    // Time from navigation start to the end of the first frame (the benchmark reads it).
    const w = window as unknown as { attnscopeFirstFrame?: number };
    if (w.attnscopeFirstFrame === undefined) w.attnscopeFirstFrame = performance.now();
  }
}
