// The k best of n scores, for retrieval examples and `vsl query`: highest first, ties by the lower index (the
// optimistic rule of the metrics, which place a positive before the negatives it ties with). NaN is last.
export interface Hit {
  index: number;
  score: number;
}

export function topK(n: number, score: (i: number) => number, k: number): Hit[] {
  const hits: Hit[] = [];
  const better = (a: Hit, b: Hit) =>
    a.score > b.score || (a.score === b.score && a.index < b.index) || (b.score !== b.score && a.score === a.score);
  if (k <= 0) return hits;
  for (let i = 0; i < n; i++) {
    const h = { index: i, score: score(i) };
    if (hits.length < k) hits.push(h);
    else if (better(h, hits[k - 1])) hits[k - 1] = h;
    else continue;
    for (let j = hits.length - 1; j > 0 && better(hits[j], hits[j - 1]); j--) {
      [hits[j], hits[j - 1]] = [hits[j - 1], hits[j]];
    }
  }
  return hits;
}
