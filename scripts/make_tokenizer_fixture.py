#!/usr/bin/python3
"""Generate test/fixtures/tokenizer/cases.json and fuzz.json: captions and the tokens that the reference makes.

The reference tokenises each caption line as
    nltk.tokenize.word_tokenize(line.strip().lower().decode('utf-8'))
i.e. bytes are stripped and lower-cased (ASCII only) before decoding, then Punkt splits sentences and
NLTKWordTokenizer splits words. This script runs exactly that with Debian's NLTK (python3-nltk, 3.8):

    /usr/bin/python3 scripts/make_tokenizer_fixture.py [--punkt-tab DIR]

Punkt needs its English model. Where NLTK finds `tokenizers/punkt/english.pickle` it is used through
nltk.word_tokenize itself. Otherwise (this machine has no nltk_data and no way to download it):
  * with --punkt-tab DIR (a `punkt_tab/english` folder of nltk_data: abbrev_types.txt, collocations.tab,
    sent_starters.txt, ortho_context.tab) the full English parameters are loaded from it;
  * without it, NLTK's own PunktSentenceTokenizer runs on PunktParameters built from the English model's
    abbreviation types, collocations and sentence starters listed below, with an EMPTY orthographic context.
The mode used is recorded in the fixture ("punkt" field). In the last mode, the fixture checks the TypeScript
port of Punkt + NLTKWordTokenizer against NLTK's real code with the same parameters; the orthographic context
only matters after an initial or a number followed by a word seen lower-case at a sentence start and never
capitalised in the model's training text (see src/data/tokenizer.ts).
"""
import argparse
import json
import os
import random
import sys

import nltk
from nltk.tokenize import NLTKWordTokenizer
from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

# Parameters of NLTK's English Punkt model that matter on lower-cased text (same lists as src/data/tokenizer.ts).
ABBREVS = (
    'ct m.j t a.c n.h ms p.a.m dr pa p.m u.k st dec u.s.a lt g.k adm p h.m ga tenn yr sen n.c j.j d.h s.g inc vs '
    's.p.a a.t n feb sr jan s.a.y n.y col g.f c.o.m.b d ft va r.k e.f chg r.i a.g minn a.h k n.j m l.f f.j gen '
    'i.m.s s.a aug j.p okla m.d.c ltd oct s vt r.a j.c ariz w.w b.v ore h w.r e.h mrs cie corp w n.v a.d r.j ok '
    'e.m w.c ill nov u.s prof conn u.s.s.r mg f.g ph.d g calif messrs h.f wash tues sw bros u.n l wis mr sep d.c '
    'ave e.l co s.s reps c r.t h.c r wed a.s v fla jr r.h c.v m.b.a rep a.a e c.i.t l.a b.f j.b d.w j.k ala f '
    'w.va sept mich n.m j.r l.p s.c colo fri a.m g.d kan maj ky a.m.e n.d t.j cos nev'
).split(' ') + ['. . ']
COLLOCATIONS = [tuple(p.split(' ')) for p in (
    '##number## international|##number## rj|##number## commodities|##number## cooper|b stewart|'
    '##number## genentech|##number## wedgestone|i toussie|##number## pepper|j fialka|o ludcke|##number## insider|'
    '##number## aes|i magnin|##number## credit|##number## corrections|##number## financing|##number## henley|'
    '##number## business|##number## pay-fone|b wigton|b edelman|b levine|##number## leisure|b smith|j walter|'
    '##number## pegasus|##number## dividend|j aron|##number## review|##number## abreast|##number## who|'
    '##number## letters|##number## colgate|##number## cbot|##number## notable|##number## zimmer'
).split('|')]
SENT_STARTERS = (
    'most he since so both these it nevertheless this indeed however instead under similarly some though while '
    'when in despite although nonetheless thus there if the nor separately moreover but they yet many according '
    'sales among meanwhile even i'
).split(' ')

# Hand-picked tricky captions (raw lines, as they would appear in <split>_caps.txt).
CASES = [
    'A man riding a horse on a beach.',
    'A man. A dog.',
    'a man. a dog',
    'Two dogs play in the snow .',
    'A woman in a red dress , holding an umbrella .',
    'The man said "hello" to the woman.',
    '"Look at that," she said.',
    "A dog's bone and the dogs' toys.",
    "The man can't find his keys.",
    "They don't like it's color.",
    "It's a sunny day and we're outside.",
    "I'm sure they'll come, you've seen them, he'd know.",
    'A cannot, gonna, gotta, wanna go, gimme, lemme test.',
    "'Tis the season and 'twas the night.",
    'Mr. Smith walks down St. Mark street.',
    'Dr. Who is on the tv.',
    'A sign that says st. patrick .',
    'A man in Washington D.C. at night.',
    'The U.S. flag waves.',
    'A flag of the u.s. is shown.',
    'He paid $5 for 3.5 pounds.',
    'A sign reading 1,000 miles.',
    'A sign reading 1,000.',
    'A clock showing 10:30 in the morning.',
    'A two-story building with a red-and-white awning.',
    'A man/woman with his/her bike.',
    'A dog... waiting outside.',
    'A dog ... waiting outside ...',
    'Wait.. what is that..',
    'A bowl (with fruit) and [a spoon] {and} <tag>.',
    'Tom & Jerry cartoon on a tv.',
    'A sign reading 50% off!',
    'Is that a bird? No, a plane!',
    'A man @ the park #fun.',
    'A cafe called café with a crème brûlée.',
    'An ÉCOLE sign and a ÜBER car.',
    'A smiley 😀 face on a cup.',
    'A man  with   two spaces.',
    'A man\twith a tab.',
    '  Leading and trailing spaces  ',
    'A sign saying “welcome” and ‘hi’.',
    'A book titled «Paris» on the table.',
    'A sign -- big and bold -- on the wall.',
    'A man wearing a t-shirt; the shirt is blue: very blue.',
    'The time is 3 p.m. on a sunny day.',
    'A 5. place finish.',
    'She is no. 1 in the race.',
    'A plan a. the dog waits.',
    'A room with a t.v. and a couch.',
    'Items: a, b, c.',
    "The 80's style car.",
    "A sign that reads 'stop' in red.",
    "A rock 'n' roll band.",
    "The players' bench is empty'",
    "Don't walk sign at 5 o'clock.",
    'A man with an e-mail address.',
    'The word hello.world on a screen.',
    'He said: go!',
    'Children (ages 5-7) playing.',
    'A * star * on the sign.',
    'A SIGN THAT SAYS STOP.',
    'A dog.A cat.',
    'A man, a plan, a canal: panama.',
    'What is this?? A cat!!',
    'A man... A woman.',
    'A man. . . a woman.',
    'Eat at Joe\'s. Open 24/7.',
    'A photo taken in the 1990s.',
    'Ms. Jones and Mrs. Brown and Jr. Smith.',
    'A sign that says ``quoted\'\' text.',
    'Some text with a trailing comma,',
    'A number 3.',
    'A list: 1. apples 2. pears.',
    'The word "end".',
    'The sign (closed).',
    'A sentence ending with a quote."',
    'Two sentences! Another one? Yes.',
    'A man in the u.k. eats.',
    'The sign reads no. 5',
    'A cat sitting on a mat.\u00a0',
    'A non\u00a0breaking space.',
    'Naïve art in the Café.',
    'İstanbul street at night.',
    'A building with 2ND floor.',
    'An ice-cream cone; yummy!',
    "I'd've done it.",
    'A kid\'s "toy" (red).',
    'A motorcycle... parked.',
    'A man. 3 dogs.',
    'A man. (a dog)',
    'A man. "a dog"',
    'The sign says: Ave. Maria',
    'A cat - a dog',
    '',
]

FUZZ_WORDS = (
    'a an the man woman dog cat st mr dr no u.s. d.c. t.v. a. b. 3. 3.5 1,000 $5 50% & @ # ... .. . , ; : ! ? '
    '" \' `` \'\' ( ) [ ] { } < > -- - / * can\'t don\'t it\'s dog\'s dogs\' o\'clock \'tis gonna wanna cannot '
    'café É Über 😀 “ ” ‘ ’ « » 10:30 e-mail t-shirt mr. st. ave. no. p.m. etc. i.e. ms. jr. 2nd x y'
).split(' ')


FUZZ_CHARS = list('aAbBcdeEnNsStTy019 .  ..,;:!?\'\'""``()[]{}<>-/*&$%@#_\t') + ['é', 'É', '😀', '“', '”', '‘', '’', '«', '»', '\u00a0']


def fuzz_cases(n, seed):
    rnd = random.Random(seed)
    seps = [' ', ' ', ' ', ' ', '', '  ', '\t']
    out = []
    for i in range(n):
        if i % 2 == 1:
            # character soup: stresses the regex rules one character at a time
            out.append(''.join(rnd.choice(FUZZ_CHARS) for _ in range(rnd.randint(1, 30))))
            continue
        k = rnd.randint(1, 12)
        parts = []
        for _ in range(k):
            w = rnd.choice(FUZZ_WORDS)
            if rnd.random() < 0.2:
                w = w.upper()
            elif rnd.random() < 0.2:
                w = w.capitalize()
            parts.append(w)
            parts.append(rnd.choice(seps))
        out.append(''.join(parts))
    return out


def load_punkt_tab(d):
    p = PunktParameters()
    with open(os.path.join(d, 'abbrev_types.txt'), encoding='utf-8') as f:
        p.abbrev_types = {line.rstrip('\n') for line in f if line.rstrip('\n')}
    with open(os.path.join(d, 'collocations.tab'), encoding='utf-8') as f:
        p.collocations = {tuple(line.rstrip('\n').split('\t')) for line in f if line.strip()}
    with open(os.path.join(d, 'sent_starters.txt'), encoding='utf-8') as f:
        p.sent_starters = {line.strip() for line in f if line.strip()}
    with open(os.path.join(d, 'ortho_context.tab'), encoding='utf-8') as f:
        for line in f:
            if line.strip():
                typ, val = line.rstrip('\n').split('\t')
                p.ortho_context[typ] = int(val)
    return p


def make_tokenizer(punkt_tab):
    try:
        nltk.data.find('tokenizers/punkt/english.pickle')
        return nltk.word_tokenize, 'nltk.word_tokenize with nltk_data punkt english.pickle'
    except LookupError:
        pass
    if punkt_tab:
        params = load_punkt_tab(punkt_tab)
        mode = f'NLTK PunktSentenceTokenizer with punkt_tab/english from {punkt_tab} + NLTKWordTokenizer'
    else:
        params = PunktParameters()
        params.abbrev_types = set(ABBREVS)
        params.collocations = set(COLLOCATIONS)
        params.sent_starters = set(SENT_STARTERS)
        mode = ('NLTK PunktSentenceTokenizer with the English abbreviation types, collocations and sentence starters '
                '(orthographic context empty; punkt data not installed) + NLTKWordTokenizer')
    pst = PunktSentenceTokenizer(params)
    wt = NLTKWordTokenizer()
    return (lambda text: [t for s in pst.tokenize(text) for t in wt.tokenize(s)]), mode


def reference_tokens(tok, raw):
    # bytes strip + bytes lower (ASCII only) + decode, as the reference's data loader and vocab.py do
    return tok(raw.encode('utf-8').strip().lower().decode('utf-8'))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--punkt-tab', help='a punkt_tab/english folder of nltk_data')
    ap.add_argument('--out', default=os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'tokenizer'))
    ap.add_argument('--fuzz', type=int, default=1000)
    args = ap.parse_args()
    tok, mode = make_tokenizer(args.punkt_tab)
    os.makedirs(args.out, exist_ok=True)
    meta = {'generator': 'scripts/make_tokenizer_fixture.py', 'nltk': nltk.__version__,
            'python': sys.version.split()[0], 'punkt': mode}
    for name, raws in (('cases.json', CASES), ('fuzz.json', fuzz_cases(args.fuzz, 20240601))):
        rows = [{'raw': r, 'tokens': reference_tokens(tok, r)} for r in raws]
        with open(os.path.join(args.out, name), 'w', encoding='utf-8') as f:
            # one case per line, to keep diffs readable
            head = json.dumps(meta, ensure_ascii=False)[:-1]
            body = ',\n'.join(json.dumps(r, ensure_ascii=False) for r in rows)
            f.write(f'{head},\n"cases": [\n{body}\n]}}\n')
        print(f'wrote {len(rows)} cases to {os.path.join(args.out, name)} ({mode})')


if __name__ == '__main__':
    main()
