// TF-IDF rows of a split's captions, as VSL's data.py computes them with scikit-learn defaults
// (CountVectorizer() then TfidfTransformer()), kept sparse (CSR) instead of the reference's dense float64 matrix.
//
//   tokens  = re.findall(r"(?u)\b\w\w+\b", caption.lower())     maximal runs of >= 2 Unicode word characters
//   tf      = raw count of the token in the caption
//   idf(t)  = ln((1 + n) / (1 + df(t))) + 1                      smooth_idf=True, n = number of captions
//   row     = tf * idf, then L2-normalised (an empty caption stays an all-zero row)
//   columns = the split's terms sorted by code point (sklearn's sorted vocabulary)
//
// The semantic similarity matrices of a training batch follow from the rows.
import { VslError } from '../util/errors.js';

export interface Tfidf {
  readonly nDocs: number;
  readonly nTerms: number;
  /** Column -> term, in code-point order. */
  readonly terms: readonly string[];
  /** Inverse document frequency per column. */
  readonly idf: Float64Array;
  /** CSR row pointers (nDocs + 1). */
  readonly indptr: Int32Array;
  /** CSR column indices, increasing within each row. */
  readonly indices: Int32Array;
  /** CSR values (each row has unit L2 norm unless empty). */
  readonly values: Float64Array | Float32Array;
}

const TOKEN_RE = /[\p{L}\p{N}_]{2,}/gu; // Python's (?u)\b\w\w+\b: \w is exactly [\p{L}\p{N}_] there

/** sklearn's default analyzer: lower-case, then runs of >= 2 word characters. */
export function tfidfTokens(text: string): string[] {
  return text.toLowerCase().match(TOKEN_RE) ?? [];
}

/** Compare strings by Unicode code point (Python's str ordering), not by UTF-16 unit. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) {
      // Surrogates (0xD800-0xDFFF) encode code points above 0xFFFF, which sort after every BMP code point.
      const xs = x >= 0xd800 && x <= 0xdfff;
      const ys = y >= 0xd800 && y <= 0xdfff;
      if (xs !== ys) return xs ? 1 : -1;
      return x - y;
    }
  }
  return a.length - b.length;
}

class IntList {
  data = new Int32Array(1024);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const d = new Int32Array(this.data.length * 2);
      d.set(this.data);
      this.data = d;
    }
    this.data[this.length++] = v;
  }
  toArray(): Int32Array {
    return this.data.slice(0, this.length);
  }
}

/** Fit TF-IDF on all captions of a split (one caption per document). */
export function fitTfidf(captions: readonly string[], opts: { float32?: boolean } = {}): Tfidf {
  const n = captions.length;
  const termId = new Map<string, number>();
  const termList: string[] = [];
  const df: number[] = [];
  const ptr = new Int32Array(n + 1);
  const ids = new IntList();
  const counts = new IntList();
  const local = new Map<number, number>();
  for (let d = 0; d < n; d++) {
    local.clear();
    for (const tok of tfidfTokens(captions[d])) {
      let id = termId.get(tok);
      if (id === undefined) {
        id = termList.length;
        termId.set(tok, id);
        termList.push(tok);
        df.push(0);
      }
      local.set(id, (local.get(id) ?? 0) + 1);
    }
    for (const [id, c] of local) {
      ids.push(id);
      counts.push(c);
      df[id]++;
    }
    ptr[d + 1] = ids.length;
  }

  // Columns in code-point order of the terms.
  const order = termList.map((_, i) => i).sort((a, b) => compareCodePoints(termList[a], termList[b]));
  const col = new Int32Array(termList.length);
  order.forEach((t, c) => (col[t] = c));
  const V = termList.length;
  const terms = order.map((t) => termList[t]);
  const idf = new Float64Array(V);
  for (let t = 0; t < V; t++) idf[col[t]] = Math.log((1 + n) / (1 + df[t])) + 1;

  const nnz = ids.length;
  const indices = new Int32Array(nnz);
  const values = opts.float32 ? new Float32Array(nnz) : new Float64Array(nnz);
  const rowCols: number[] = [];
  const rowVals = new Float64Array(Math.max(1, maxRowLength(ptr)));
  for (let d = 0; d < n; d++) {
    const a = ptr[d];
    const b = ptr[d + 1];
    rowCols.length = 0;
    for (let k = a; k < b; k++) rowCols.push(k);
    rowCols.sort((x, y) => col[ids.data[x]] - col[ids.data[y]]);
    let ss = 0;
    for (let k = 0; k < rowCols.length; k++) {
      const src = rowCols[k];
      const c = col[ids.data[src]];
      const v = counts.data[src] * idf[c];
      indices[a + k] = c;
      rowVals[k] = v;
      ss += v * v;
    }
    const norm = Math.sqrt(ss);
    for (let k = 0; k < rowCols.length; k++) values[a + k] = norm > 0 ? rowVals[k] / norm : 0;
  }
  return { nDocs: n, nTerms: V, terms, idf, indptr: ptr, indices, values };
}

function maxRowLength(ptr: Int32Array): number {
  let m = 0;
  for (let i = 1; i < ptr.length; i++) m = Math.max(m, ptr[i] - ptr[i - 1]);
  return m;
}

function checkRow(t: Tfidf, r: number, what: string): void {
  if (!Number.isInteger(r) || r < 0 || r >= t.nDocs) {
    throw new VslError(`tfidf: ${what}: expected a caption index in [0, ${t.nDocs}), found ${r}`);
  }
}

/** Dense float32 rows (B x nTerms), e.g. a batch's tfidf_for_caption. */
export function denseRows(t: Tfidf, rows: ArrayLike<number>): Float32Array {
  const V = t.nTerms;
  const out = new Float32Array(rows.length * V);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    checkRow(t, r, 'row');
    for (let k = t.indptr[r]; k < t.indptr[r + 1]; k++) out[i * V + t.indices[k]] = t.values[k]!;
  }
  return out;
}

/** Sparse sum of some rows, as (cols, vals) sorted by column. */
function sumRows(
  t: Tfidf,
  rows: number[],
  acc: Float64Array,
  touched: number[],
): { cols: Int32Array; vals: Float64Array } {
  touched.length = 0;
  for (const r of rows) {
    for (let k = t.indptr[r]; k < t.indptr[r + 1]; k++) {
      const c = t.indices[k];
      if (acc[c] === 0) touched.push(c);
      acc[c] += t.values[k];
    }
  }
  touched.sort((a, b) => a - b);
  const cols = new Int32Array(touched.length);
  const vals = new Float64Array(touched.length);
  touched.forEach((c, i) => {
    cols[i] = c;
    vals[i] = acc[c]!;
    acc[c] = 0;
  });
  return { cols, vals };
}

/** Gram matrix of sparse vectors (float64 accumulation, float32 result), scaled by `scale`. */
function gram(vecs: Array<{ cols: Int32Array; vals: Float64Array }>, nTerms: number, scale: number): Float32Array {
  const B = vecs.length;
  const out = new Float32Array(B * B);
  const dense = new Float64Array(nTerms);
  for (let a = 0; a < B; a++) {
    const va = vecs[a];
    for (let k = 0; k < va.cols.length; k++) dense[va.cols[k]] = va.vals[k]!;
    for (let b = a; b < B; b++) {
      const vb = vecs[b];
      let s = 0;
      for (let k = 0; k < vb.cols.length; k++) s += dense[vb.cols[k]] * vb.vals[k];
      out[a * B + b] = s * scale;
      out[b * B + a] = s * scale;
    }
    for (let k = 0; k < va.cols.length; k++) dense[va.cols[k]] = 0;
  }
  return out;
}

/**
 * Image-image semantic similarity of a batch (B x B, row-major): C[a,b] = mean over the capsPerImage^2 caption
 * pairs of images a and b of their TF-IDF cosine. Image i owns captions i*capsPerImage .. i*capsPerImage+capsPerImage-1.
 */
export function imageCider(t: Tfidf, imageIndices: ArrayLike<number>, capsPerImage = 5): Float32Array {
  const acc = new Float64Array(t.nTerms);
  const touched: number[] = [];
  const cache = new Map<number, { cols: Int32Array; vals: Float64Array }>();
  const vecs = Array.from({ length: imageIndices.length }, (_, i) => {
    const img = imageIndices[i];
    let v = cache.get(img);
    if (!v) {
      const rows: number[] = [];
      for (let p = 0; p < capsPerImage; p++) {
        const r = img * capsPerImage + p;
        checkRow(t, r, `caption ${p} of image ${img}`);
        rows.push(r);
      }
      v = sumRows(t, rows, acc, touched);
      cache.set(img, v);
    }
    return v;
  });
  return gram(vecs, t.nTerms, 1 / (capsPerImage * capsPerImage));
}

/** Caption-caption TF-IDF cosine of a batch (B x B, row-major). */
export function captionCider(t: Tfidf, captionIndices: ArrayLike<number>): Float32Array {
  const vecs = Array.from({ length: captionIndices.length }, (_, i) => {
    const r = captionIndices[i];
    checkRow(t, r, 'caption');
    const a = t.indptr[r];
    const b = t.indptr[r + 1];
    return { cols: t.indices.subarray(a, b), vals: Float64Array.from(t.values.subarray(a, b)) };
  });
  return gram(vecs, t.nTerms, 1);
}
