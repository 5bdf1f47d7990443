// Caption tokenisation identical to the reference's `nltk.tokenize.word_tokenize(caption.lower())`:
//
//   1. the caption line is stripped of ASCII whitespace and lower-cased as bytes (only A-Z change);
//   2. Punkt splits it into sentences (NLTK's PunktSentenceTokenizer with the English model);
//   3. each sentence goes through NLTKWordTokenizer (NLTK's improved Treebank tokenizer).
//
// Steps 2 and 3 are a port of NLTK 3.8 (nltk/tokenize/punkt.py and destructive.py), written against Python's
// regex semantics: Python's `\w`, `\d`, `\s` and `\b` are Unicode-aware for str patterns, JavaScript's are not,
// so they are spelled out below (W, WS, \p{Nd} for \d). `$` without MULTILINE in Python also matches before a final
// newline (END).
//
// Punkt needs the trained English parameters, which NLTK loads from nltk_data at run time. The parts that can
// change a decision on ASCII-lower-cased captions are embedded below: the abbreviation types, the collocations
// and the frequent sentence starters of NLTK's English model. The orthographic context table (how often each
// word of the training corpus was seen capitalised / lower-cased at and after sentence starts) is not
// embedded: it is treated as empty. On lower-cased text that table only matters after an initial ("j.") or a
// number ("3.") followed by a word that the English model saw lower-cased at a sentence start and never
// capitalised; there Punkt keeps the sentence break and vsl removes it (e.g. "a 3. foo" where "foo" is such a
// word: NLTK gives "3" "." and vsl "3."). Such words are rare and the pattern is rarer still in captions.
// test/fixtures/tokenizer/ (scripts/make_tokenizer_fixture.py) checks this port against NLTK's own code.
import { stripAscii } from './captions.js';

// ---------------------------------------------------------------------------------------------------------
// Python regex character classes, for use inside JS `u` regexes.

/** Python's `\w` for str patterns: str.isalnum() or '_' (checked equal to this over Unicode 14). */
const W = '\\p{L}\\p{N}_';
/** Python's `\s` / str.isspace(). */
const WS = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const S = `[${WS}]`;
const NS = `[^${WS}]`;
/** Python `$` without MULTILINE: end of string, or just before a final '\n'. */
const END = '(?=\\n?$)';
/** Python `\b` just before / just after a word character. */
const B_BEFORE = `(?<![${W}])`;
const B_AFTER = `(?![${W}])`;

const re = (src: string, flags = 'gu') => new RegExp(src, flags);

/** Python str.strip() / rstrip() (Unicode whitespace). */
const PY_STRIP = re(`^${S}+|${S}+$`);
const PY_RSTRIP = re(`${S}+$`);
const PY_SPLIT = re(`${S}+`, 'u');

function pySplit(text: string): string[] {
  const parts = text.split(PY_SPLIT);
  return parts.filter((p) => p.length > 0);
}

/** Lower-case ASCII A-Z only (Python bytes.lower()). */
export function asciiLower(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

// ---------------------------------------------------------------------------------------------------------
// NLTKWordTokenizer (nltk/tokenize/destructive.py, NLTK 3.8)

type Rule = [RegExp, string];

const STARTING_QUOTES: Rule[] = [
  [re('([«“‘„]|`+)'), ' $1 '],
  [re('^"', 'u'), '``'],
  [re('(``)'), ' $1 '],
  [re('([ ([{<])("|\'{2})'), '$1 `` '],
  [re(`(')(?!re|ve|ll|m|t|s|d|n)([${W}])${B_AFTER}`, 'giu'), '$1 $2'],
];

const PUNCTUATION: Rule[] = [
  [re(`([^.])(\\.)([\\])}>"'»”’ ]*)${S}*${END}`), '$1 $2 $3 '],
  [re('([:,])([^\\p{Nd}])'), ' $1 $2'],
  [re(`([:,])${END}`), ' $1 '],
  [re('\\.{2,}'), ' $& '],
  [re('[;@#$%&]'), ' $& '],
  [re(`([^.])(\\.)([\\])}>"']*)${S}*${END}`), '$1 $2$3 '],
  [re('[?!]'), ' $& '],
  [re("([^'])' "), "$1 ' "],
  [re('[*]'), ' $& '],
];

const PARENS_BRACKETS: Rule = [re('[\\][(){}<>]'), ' $& '];
const DOUBLE_DASHES: Rule = [re('--'), ' -- '];

const ENDING_QUOTES: Rule[] = [
  [re('([»”’])'), ' $1 '],
  [re("''"), " '' "],
  [re('"'), " '' "],
  [re("([^' ])('[sS]|'[mM]|'[dD]|') "), '$1 $2 '],
  [re("([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) "), '$1 $2 '],
];

// MacIntyre contractions (CONTRACTIONS2 and CONTRACTIONS3; NLTK leaves CONTRACTIONS4 unused).
const CONTRACTIONS: Rule[] = [
  [re(`${B_BEFORE}(can)(not)${B_AFTER}`, 'giu'), ' $1 $2 '],
  [re(`${B_BEFORE}(d)('ye)${B_AFTER}`, 'giu'), ' $1 $2 '],
  [re(`${B_BEFORE}(gim)(me)${B_AFTER}`, 'giu'), ' $1 $2 '],
  [re(`${B_BEFORE}(gon)(na)${B_AFTER}`, 'giu'), ' $1 $2 '],
  [re(`${B_BEFORE}(got)(ta)${B_AFTER}`, 'giu'), ' $1 $2 '],
  [re(`${B_BEFORE}(lem)(me)${B_AFTER}`, 'giu'), ' $1 $2 '],
  [re(`${B_BEFORE}(more)('n)${B_AFTER}`, 'giu'), ' $1 $2 '],
  [re(`${B_BEFORE}(wan)(na)(?=${S})`, 'giu'), ' $1 $2 '],
  [re(` ('t)(is)${B_AFTER}`, 'giu'), ' $1 $2 '],
  [re(` ('t)(was)${B_AFTER}`, 'giu'), ' $1 $2 '],
];

function applyRules(text: string, rules: Rule[]): string {
  for (const [r, sub] of rules) text = text.replace(r, sub);
  return text;
}

/** NLTK's NLTKWordTokenizer.tokenize on one sentence (no parenthesis conversion). */
export function treebankTokenize(text: string): string[] {
  text = applyRules(text, STARTING_QUOTES);
  text = applyRules(text, PUNCTUATION);
  text = text.replace(PARENS_BRACKETS[0], PARENS_BRACKETS[1]);
  text = text.replace(DOUBLE_DASHES[0], DOUBLE_DASHES[1]);
  text = ' ' + text + ' ';
  text = applyRules(text, ENDING_QUOTES);
  text = applyRules(text, CONTRACTIONS);
  return pySplit(text);
}

// ---------------------------------------------------------------------------------------------------------
// Punkt sentence tokenizer (nltk/tokenize/punkt.py, NLTK 3.8) with the English parameters.

/** Abbreviation types of NLTK's English Punkt model (lower-cased, without the final period). */
const EN_ABBREVS = new Set(
  (
    'ct m.j t a.c n.h ms p.a.m dr pa p.m u.k st dec u.s.a lt g.k adm p h.m ga tenn yr sen n.c j.j d.h s.g inc vs ' +
    's.p.a a.t n feb sr jan s.a.y n.y col g.f c.o.m.b d ft va r.k e.f chg r.i a.g minn a.h k n.j m l.f f.j gen ' +
    'i.m.s s.a aug j.p okla m.d.c ltd oct s vt r.a j.c ariz w.w b.v ore h w.r e.h mrs cie corp w n.v a.d r.j ok ' +
    'e.m w.c ill nov u.s prof conn u.s.s.r mg f.g ph.d g calif messrs h.f wash tues sw bros u.n l wis mr sep d.c ' +
    'ave e.l co s.s reps c r.t h.c r wed a.s v fla jr r.h c.v m.b.a rep a.a e c.i.t l.a b.f j.b d.w j.k ala f ' +
    'w.va sept mich n.m j.r l.p s.c colo fri a.m g.d kan maj ky a.m.e n.d t.j cos nev'
  ).split(' '),
);
// The model also lists the spaced ellipsis ". . ." (as the type ". . "), which Punkt's word splitter produces.
EN_ABBREVS.add('. . ');

/** Collocations (word before the period, word after) of the English model. */
const EN_COLLOCATIONS = new Set(
  (
    '##number## international|##number## rj|##number## commodities|##number## cooper|b stewart|' +
    '##number## genentech|##number## wedgestone|i toussie|##number## pepper|j fialka|o ludcke|##number## insider|' +
    '##number## aes|i magnin|##number## credit|##number## corrections|##number## financing|##number## henley|' +
    '##number## business|##number## pay-fone|b wigton|b edelman|b levine|##number## leisure|b smith|j walter|' +
    '##number## pegasus|##number## dividend|j aron|##number## review|##number## abreast|##number## who|' +
    '##number## letters|##number## colgate|##number## cbot|##number## notable|##number## zimmer'
  )
    .split('|')
    .map((p) => p.replace(' ', '\t')),
);

/** Frequent sentence starters of the English model. */
const EN_SENT_STARTERS = new Set(
  (
    'most he since so both these it nevertheless this indeed however instead under similarly some though while ' +
    'when in despite although nonetheless thus there if the nor separately moreover but they yet many according ' +
    'sales among meanwhile even i'
  ).split(' '),
);

const ORTHO_BEG_UC = 1 << 1;
const ORTHO_MID_UC = 1 << 2;
const ORTHO_UNK_UC = 1 << 3;
const ORTHO_BEG_LC = 1 << 4;
const ORTHO_MID_LC = 1 << 5;
const ORTHO_UNK_LC = 1 << 6;
const ORTHO_UC = ORTHO_BEG_UC + ORTHO_MID_UC + ORTHO_UNK_UC;
const ORTHO_LC = ORTHO_BEG_LC + ORTHO_MID_LC + ORTHO_UNK_LC;

/** Punkt parameters (abbreviations, collocations "a\tb", sentence starters, orthographic context). */
export interface PunktParams {
  abbrevTypes: ReadonlySet<string>;
  collocations: ReadonlySet<string>;
  sentStarters: ReadonlySet<string>;
  orthoContext: ReadonlyMap<string, number>;
}

const ENGLISH_PUNKT: PunktParams = {
  abbrevTypes: EN_ABBREVS,
  collocations: EN_COLLOCATIONS,
  sentStarters: EN_SENT_STARTERS,
  orthoContext: new Map(),
};

// PunktLanguageVars (English defaults)
const P_NON_WORD = `(?:[)";}\\]*:@'({\\[!?])`;
const P_MULTI = `(?:-{2,}|\\.{2,}|(?:\\.${S}){2,}\\.)`;
const P_WORD_START = '[^("`{\\[:;&#*@)}\\]\\-,]';
const P_WORD_RE = re(
  `${P_MULTI}|(?=${P_WORD_START})${NS}+?(?=${S}|${END}|${P_NON_WORD}|${P_MULTI}|,(?=${END}|${S}|${P_NON_WORD}|${P_MULTI}))|${NS}`,
);
const P_PERIOD_CONTEXT_RE = re(`[.?!](?=(?<after>${P_NON_WORD}|${S}+(?<next>${NS}+)))`);
const P_BOUNDARY_REALIGN = re(`["')\\]}]+?(?:${S}+|(?=--)|(?=\\n|$))`, 'uy');
const P_NUMERIC = re(`^-?[.,]?\\p{Nd}[\\p{Nd},.-]*\\.?${END}`, 'u');
const P_INITIAL = re(`^(?:(?!\\p{Nd})[${W}])\\.${END}`, 'u');
const P_ELLIPSIS = re(`^\\.\\.+${END}`, 'u');
const P_UPPER = /^\p{Uppercase}/u;
const P_LOWER = /^\p{Lowercase}/u;
const SENT_END_CHARS = new Set(['.', '?', '!']);
const PUNCTUATION_TOKS = new Set([';', ':', ',', '.', '!', '?']);
const ASCII_WS = new Set([' ', '\t', '\n', '\r', '\x0b', '\x0c']); // Python string.whitespace

interface PunktToken {
  tok: string;
  type: string;
  periodFinal: boolean;
  sentbreak: boolean;
  abbr: boolean;
  ellipsis: boolean;
}

function makeToken(tok: string): PunktToken {
  const lower = tok.toLowerCase();
  const type = P_NUMERIC.test(lower) ? lower.replace(P_NUMERIC, '##number##') : lower;
  return { tok, type, periodFinal: tok.endsWith('.'), sentbreak: false, abbr: false, ellipsis: false };
}

function typeNoPeriod(t: PunktToken): string {
  return [...t.type].length > 1 && t.type.endsWith('.') ? t.type.slice(0, -1) : t.type;
}

function typeNoSentperiod(t: PunktToken): string {
  return t.sentbreak ? typeNoPeriod(t) : t.type;
}

function tokenizeWords(text: string): PunktToken[] {
  const out: PunktToken[] = [];
  for (const line of text.split('\n')) {
    if (line.replace(PY_STRIP, '') === '') continue;
    for (const m of line.matchAll(P_WORD_RE)) out.push(makeToken(m[0]));
  }
  return out;
}

function firstPass(p: PunktParams, t: PunktToken): void {
  const tok = t.tok;
  if (SENT_END_CHARS.has(tok)) t.sentbreak = true;
  else if (P_ELLIPSIS.test(tok)) t.ellipsis = true;
  else if (t.periodFinal && !tok.endsWith('..')) {
    const base = tok.slice(0, -1).toLowerCase();
    if (p.abbrevTypes.has(base) || p.abbrevTypes.has(base.split('-').pop()!)) t.abbr = true;
    else t.sentbreak = true;
  }
}

type Ortho = boolean | 'unknown';

function orthoHeuristic(p: PunktParams, t: PunktToken): Ortho {
  if (PUNCTUATION_TOKS.has(t.tok)) return false;
  const ctx = p.orthoContext.get(typeNoSentperiod(t)) ?? 0;
  const upper = P_UPPER.test(t.tok);
  if (upper && ctx & ORTHO_LC && !(ctx & ORTHO_MID_UC)) return true;
  if (P_LOWER.test(t.tok) && (ctx & ORTHO_UC || !(ctx & ORTHO_BEG_LC))) return false;
  return 'unknown';
}

function secondPass(p: PunktParams, t1: PunktToken, t2: PunktToken | undefined): void {
  if (!t2 || !t1.periodFinal) return;
  const typ = typeNoPeriod(t1);
  const nextTyp = typeNoSentperiod(t2);
  const initial = P_INITIAL.test(t1.tok);
  if (p.collocations.has(`${typ}\t${nextTyp}`)) {
    t1.sentbreak = false;
    t1.abbr = true;
    return;
  }
  if ((t1.abbr || t1.ellipsis) && !initial) {
    if (orthoHeuristic(p, t2) === true) {
      t1.sentbreak = true;
      return;
    }
    if (P_UPPER.test(t2.tok) && p.sentStarters.has(nextTyp)) {
      t1.sentbreak = true;
      return;
    }
  }
  if (initial || typ === '##number##') {
    const o = orthoHeuristic(p, t2);
    if (o === false) {
      t1.sentbreak = false;
      t1.abbr = true;
      return;
    }
    if (o === 'unknown' && initial && P_UPPER.test(t2.tok) && !((p.orthoContext.get(nextTyp) ?? 0) & ORTHO_LC)) {
      t1.sentbreak = false;
      t1.abbr = true;
    }
  }
}

function textContainsSentbreak(p: PunktParams, text: string): boolean {
  const toks = tokenizeWords(text);
  for (const t of toks) firstPass(p, t);
  for (let i = 0; i < toks.length; i++) secondPass(p, toks[i], toks[i + 1]);
  let found = false;
  for (const t of toks) {
    if (found) return true;
    if (t.sentbreak) found = true;
  }
  return false;
}

/** Index of the last ASCII whitespace character, or 0 when there is none (Punkt's own quirk: also 0 at index 0). */
function lastWhitespaceIndex(text: string): number {
  for (let i = text.length - 1; i >= 0; i--) if (ASCII_WS.has(text[i])) return i;
  return 0;
}

interface EndContext {
  end: number; // index just past the sentence-ending character
  nextStart: number | null; // start of the following token, when whitespace separates it
  context: string;
}

function matchPotentialEndContexts(text: string): EndContext[] {
  const out: EndContext[] = [];
  let prevStart = 0;
  let prevStop = 0;
  let prev: RegExpExecArray | null = null;
  const emit = (m: RegExpExecArray, start: number, stop: number) => {
    const after = m.groups!.after;
    const next = m.groups!.next;
    out.push({
      end: m.index + m[0].length,
      nextStart: next !== undefined ? m.index + 1 + after.length - next.length : null,
      context: text.slice(start, stop) + m[0] + after,
    });
  };
  P_PERIOD_CONTEXT_RE.lastIndex = 0;
  for (const m of text.matchAll(P_PERIOD_CONTEXT_RE)) {
    const before = text.slice(prevStop, m.index);
    let idx = lastWhitespaceIndex(before);
    if (idx) idx += prevStop + 1;
    else idx = prevStart;
    if (prev && prevStop <= idx) emit(prev, prevStart, prevStop);
    prev = m;
    prevStart = idx;
    prevStop = m.index;
  }
  if (prev) emit(prev, prevStart, prevStop);
  return out;
}

/** Punkt sentence segmentation (PunktSentenceTokenizer.tokenize with realign_boundaries=True). */
export function sentTokenize(text: string, params: PunktParams = ENGLISH_PUNKT): string[] {
  const slices: Array<[number, number]> = [];
  let lastBreak = 0;
  for (const c of matchPotentialEndContexts(text)) {
    if (textContainsSentbreak(params, c.context)) {
      slices.push([lastBreak, c.end]);
      lastBreak = c.nextStart ?? c.end;
    }
  }
  slices.push([lastBreak, text.replace(PY_RSTRIP, '').length]);

  const sents: string[] = [];
  const sub = (a: number, b: number) => (b > a ? text.slice(a, b) : '');
  let realign = 0;
  for (let i = 0; i < slices.length; i++) {
    const s1: [number, number] = [slices[i][0] + realign, slices[i][1]];
    const s2 = slices[i + 1];
    if (!s2) {
      if (sub(s1[0], s1[1])) sents.push(sub(s1[0], s1[1]));
      continue;
    }
    P_BOUNDARY_REALIGN.lastIndex = 0;
    const m = P_BOUNDARY_REALIGN.exec(sub(s2[0], s2[1]));
    if (m) {
      sents.push(sub(s1[0], s2[0] + m[0].replace(PY_RSTRIP, '').length));
      realign = m[0].length;
    } else {
      realign = 0;
      if (sub(s1[0], s1[1])) sents.push(sub(s1[0], s1[1]));
    }
  }
  return sents;
}

/** nltk.tokenize.word_tokenize(text) (English, preserve_line=False). */
export function wordTokenize(text: string): string[] {
  const out: string[] = [];
  for (const sent of sentTokenize(text)) for (const t of treebankTokenize(sent)) out.push(t);
  return out;
}

/** Tokens of one caption line exactly as the reference makes them: strip, ASCII lower-case, word_tokenize. */
export function tokenizeCaption(raw: string): string[] {
  return wordTokenize(asciiLower(stripAscii(raw)));
}
