// WebGL2 points for the atlas: one program draws every head's joint query-key embedding (the matrix
// view: one viewport per head) or one head under a camera (the single view). Positions are the raw
// projection coordinates; a per-draw matrix maps them to the screen, so switching heads, zooming or
// rotating uploads nothing.

const VS = `#version 300 es
in vec3 aPos;
in vec4 aColor;
in float aHi;
uniform mat4 uM;
uniform float uSize;
uniform float uDim;
out vec4 vColor;
void main() {
  gl_Position = uM * vec4(aPos, 1.0);
  bool hi = aHi > 0.5;
  gl_PointSize = hi ? uSize * 2.2 + 2.0 : uSize;
  vColor = aColor;
  if (uDim > 0.0 && !hi) vColor.a *= uDim;
}`;

const FS = `#version 300 es
precision mediump float;
in vec4 vColor;
out vec4 outColor;
void main() {
  vec2 c = gl_PointCoord * 2.0 - 1.0;
  if (dot(c, c) > 1.0) discard;
  outColor = vec4(vColor.rgb * vColor.a, vColor.a);
}`;

function compile(gl: WebGL2RenderingContext, type: number, src: string): WebGLShader {
  const s = gl.createShader(type)!;
  gl.shaderSource(s, src);
  gl.compileShader(s);
  if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(`WebGL shader: ${gl.getShaderInfoLog(s)}`);
  return s;
}

export type Mat4 = Float32Array; // column-major

export function identity(): Mat4 {
  const m = new Float32Array(16);
  m[0] = m[5] = m[10] = m[15] = 1;
  return m;
}

export function multiply(a: Mat4, b: Mat4): Mat4 {
  const o = new Float32Array(16);
  for (let c = 0; c < 4; ++c)
    for (let r = 0; r < 4; ++r) {
      let s = 0;
      for (let k = 0; k < 4; ++k) s += a[k * 4 + r] * b[c * 4 + k];
      o[c * 4 + r] = s;
    }
  return o;
}

// x' = M x for a point (w = 1): clip coordinates x, y (the maps here are affine).
export function apply(m: Mat4, x: number, y: number, z: number): [number, number, number] {
  return [m[0] * x + m[4] * y + m[8] * z + m[12], m[1] * x + m[5] * y + m[9] * z + m[13], m[2] * x + m[6] * y + m[10] * z + m[14]];
}

// A point cloud's box as centre and one scale, so that it fits [-1, 1] in every axis, aspect kept.
export interface Fit {
  c: [number, number, number];
  s: number;
}
export function fit(p: Float32Array, dims: number, count: number): Fit {
  const lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];
  for (let i = 0; i < count; ++i)
    for (let d = 0; d < dims; ++d) {
      const v = p[i * dims + d];
      if (!Number.isFinite(v)) continue;
      if (v < lo[d]) lo[d] = v;
      if (v > hi[d]) hi[d] = v;
    }
  const c: [number, number, number] = [0, 0, 0];
  let ext = 0;
  for (let d = 0; d < dims; ++d) {
    if (!(hi[d] >= lo[d])) continue;
    c[d] = (lo[d] + hi[d]) / 2;
    ext = Math.max(ext, (hi[d] - lo[d]) / 2);
  }
  return { c, s: ext > 0 ? 1 / ext : 1 };
}

// Fit, then scale sx, sy and shift tx, ty (clip units); z kept in [-1, 1] for 3-D.
export function fitMatrix(f: Fit, sx: number, sy: number, tx = 0, ty = 0): Mat4 {
  const m = identity();
  m[0] = f.s * sx;
  m[5] = f.s * sy;
  m[10] = f.s * 0.5;
  m[12] = -f.c[0] * f.s * sx + tx;
  m[13] = -f.c[1] * f.s * sy + ty;
  m[14] = -f.c[2] * f.s * 0.5;
  return m;
}

// Rotation about y (yaw) then x (pitch).
export function rotation(yaw: number, pitch: number): Mat4 {
  const cy = Math.cos(yaw), sy = Math.sin(yaw), cp = Math.cos(pitch), sp = Math.sin(pitch);
  const ry = identity();
  ry[0] = cy, ry[8] = sy, ry[2] = -sy, ry[10] = cy;
  const rx = identity();
  rx[5] = cp, rx[9] = -sp, rx[6] = sp, rx[10] = cp;
  return multiply(rx, ry);
}

export class PointGL {
  readonly gl: WebGL2RenderingContext;
  private prog: WebGLProgram;
  private loc: { pos: number; color: number; hi: number; m: WebGLUniformLocation; size: WebGLUniformLocation; dim: WebGLUniformLocation };
  private vao: WebGLVertexArrayObject;
  private buffers = new Map<string, { buf: WebGLBuffer; bytes: number }>();

  constructor(readonly canvas: HTMLCanvasElement) {
    const gl = canvas.getContext('webgl2', { antialias: false, premultipliedAlpha: true, preserveDrawingBuffer: true });
    if (!gl) throw new Error('this browser has no WebGL2: the atlas needs it');
    this.gl = gl;
    const p = gl.createProgram()!;
    gl.attachShader(p, compile(gl, gl.VERTEX_SHADER, VS));
    gl.attachShader(p, compile(gl, gl.FRAGMENT_SHADER, FS));
    gl.linkProgram(p);
    if (!gl.getProgramParameter(p, gl.LINK_STATUS)) throw new Error(`WebGL program: ${gl.getProgramInfoLog(p)}`);
    this.prog = p;
    this.loc = {
      pos: gl.getAttribLocation(p, 'aPos'),
      color: gl.getAttribLocation(p, 'aColor'),
      hi: gl.getAttribLocation(p, 'aHi'),
      m: gl.getUniformLocation(p, 'uM')!,
      size: gl.getUniformLocation(p, 'uSize')!,
      dim: gl.getUniformLocation(p, 'uDim')!,
    };
    this.vao = gl.createVertexArray()!;
  }

  // A named buffer, (re)filled when data is given (element buffers: indices, bound to the VAO).
  buffer(name: string, data?: ArrayBufferView, elements = false): WebGLBuffer {
    const gl = this.gl;
    let b = this.buffers.get(name);
    if (!b) {
      b = { buf: gl.createBuffer()!, bytes: 0 };
      this.buffers.set(name, b);
    }
    if (data) {
      const target = elements ? gl.ELEMENT_ARRAY_BUFFER : gl.ARRAY_BUFFER;
      if (elements) gl.bindVertexArray(this.vao);
      gl.bindBuffer(target, b.buf);
      gl.bufferData(target, data, gl.STATIC_DRAW);
      b.bytes = data.byteLength;
    }
    return b.buf;
  }
  has(name: string): boolean {
    return this.buffers.has(name);
  }
  drop(prefix: string): void {
    for (const [k, b] of this.buffers)
      if (k.startsWith(prefix)) {
        this.gl.deleteBuffer(b.buf);
        this.buffers.delete(k);
      }
  }

  resize(): { w: number; h: number; dpr: number } {
    const dpr = Math.min(window.devicePixelRatio || 1, 2);
    const w = this.canvas.clientWidth, h = this.canvas.clientHeight;
    const W = Math.max(1, Math.round(w * dpr)), H = Math.max(1, Math.round(h * dpr));
    if (this.canvas.width !== W || this.canvas.height !== H) {
      this.canvas.width = W;
      this.canvas.height = H;
    }
    return { w, h, dpr };
  }

  clear(rgb: [number, number, number]): void {
    const gl = this.gl;
    gl.viewport(0, 0, this.canvas.width, this.canvas.height);
    gl.disable(gl.SCISSOR_TEST);
    gl.clearColor(rgb[0], rgb[1], rgb[2], 1);
    gl.clear(gl.COLOR_BUFFER_BIT);
  }

  // Draws `count` points: positions from buffer pos at byte offset posOffset (dims floats each),
  // colours (RGBA bytes) and highlight flags (one byte) from their buffers at their offsets.
  draw(o: {
    pos: WebGLBuffer; posOffset: number; dims: number; color: WebGLBuffer; colorOffset: number; hi: WebGLBuffer;
    count: number; m: Mat4; size: number; dim: number; // alpha of points not highlighted (0: no dimming)
    viewport?: [number, number, number, number];
    indices?: WebGLBuffer; // draw these points (uint32 indices) instead of 0..count-1
    first?: number; // with indices: start at this index
  }): void {
    const gl = this.gl;
    gl.useProgram(this.prog);
    gl.bindVertexArray(this.vao);
    gl.enable(gl.BLEND);
    gl.blendFunc(gl.ONE, gl.ONE_MINUS_SRC_ALPHA);
    if (o.viewport) {
      gl.viewport(...o.viewport);
      gl.enable(gl.SCISSOR_TEST);
      gl.scissor(...o.viewport);
    } else {
      gl.viewport(0, 0, this.canvas.width, this.canvas.height);
      gl.disable(gl.SCISSOR_TEST);
    }
    gl.bindBuffer(gl.ARRAY_BUFFER, o.pos);
    gl.enableVertexAttribArray(this.loc.pos);
    gl.vertexAttribPointer(this.loc.pos, o.dims, gl.FLOAT, false, 4 * o.dims, o.posOffset);
    gl.bindBuffer(gl.ARRAY_BUFFER, o.color);
    gl.enableVertexAttribArray(this.loc.color);
    gl.vertexAttribPointer(this.loc.color, 4, gl.UNSIGNED_BYTE, true, 4, o.colorOffset);
    gl.bindBuffer(gl.ARRAY_BUFFER, o.hi);
    gl.enableVertexAttribArray(this.loc.hi);
    gl.vertexAttribPointer(this.loc.hi, 1, gl.UNSIGNED_BYTE, false, 1, 0);
    gl.uniformMatrix4fv(this.loc.m, false, o.m);
    gl.uniform1f(this.loc.size, o.size);
    gl.uniform1f(this.loc.dim, o.dim);
    if (o.indices) {
      gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, o.indices);
      gl.drawElements(gl.POINTS, o.count, gl.UNSIGNED_INT, 4 * (o.first ?? 0));
    } else gl.drawArrays(gl.POINTS, 0, o.count);
  }
}
