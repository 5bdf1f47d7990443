// SCAN "precomp" split layout: <data_path>/<data_name>/<split>_ims.npy (N, 36, img_dim) float32 and
// <split>_caps.txt (5 captions per image, captions 5i..5i+4 belong to image i).
import fs from 'node:fs';
import path from 'node:path';
import { badInput, VslError } from '../util/errors.js';
import { imageDivisor, readCaptions } from './captions.js';
import { expectFeatures, openNpy, type NpyHandle } from '../io/npyRead.js';

export interface SplitPaths {
  dir: string;
  images: string;
  captions: string;
}

/** Paths of a split's two files. */
export function splitPaths(dataPath: string, dataName: string, split: string): SplitPaths {
  const dir = path.join(dataPath, dataName);
  return { dir, images: path.join(dir, `${split}_ims.npy`), captions: path.join(dir, `${split}_caps.txt`) };
}

export interface OpenSplitOptions {
  /** Expected feature dimension (--img-dim); checked against the file when given. */
  imgDim?: number;
  /** Regions per image (36 in SCAN precomp). */
  regions?: number;
  /** Use only the first captions (the reference uses 5000 for dev, i.e. its first 1000 images). */
  maxCaptions?: number;
}

export interface PrecompSplit {
  readonly dataPath: string;
  readonly dataName: string;
  readonly split: string;
  readonly paths: SplitPaths;
  /** Lazy row reader over `<split>_ims.npy` (rows = images). */
  readonly images: NpyHandle;
  /** The captions in use (all, or the first maxCaptions). */
  readonly captions: readonly string[];
  /** Captions per image: 5 (or 1 when the file has one image row per caption). */
  readonly imDiv: 1 | 5;
  /** Captions in use. */
  readonly nCaptions: number;
  /** Images in use: ceil(nCaptions / imDiv). */
  readonly nImages: number;
  /** Image rows in the file. */
  readonly nImagesInFile: number;
  readonly imgDim: number;
  /** Image row of caption c (floor(c / imDiv)). */
  imageOf(c: number): number;
  close(): void;
}

function requireFile(file: string, what: string, split: string, dataName: string, dataPath: string): void {
  if (!fs.existsSync(file)) {
    throw new VslError(
      `${file}: file not found (the ${what} of split '${split}' of data name '${dataName}' under data path '${dataPath}')`,
    );
  }
}

/** Open one split: validates both files, reads the captions, and opens the features for row access. */
export function openSplit(
  dataPath: string,
  dataName: string,
  split: string,
  opts: OpenSplitOptions = {},
): PrecompSplit {
  const p = splitPaths(dataPath, dataName, split);
  if (!fs.existsSync(dataPath))
    throw new VslError(`${dataPath}: data path not found (looking for data name '${dataName}', split '${split}')`);
  if (!fs.existsSync(p.dir))
    throw new VslError(`${p.dir}: directory not found (data name '${dataName}' under data path '${dataPath}')`);
  requireFile(p.images, 'image features', split, dataName, dataPath);
  requireFile(p.captions, 'captions', split, dataName, dataPath);
  const allCaptions = readCaptions(p.captions);
  const images = openNpy(p.images);
  try {
    expectFeatures(images, { regions: opts.regions ?? 36, dim: opts.imgDim });
    const nFile = images.shape[0];
    if (nFile === 0)
      throw badInput(p.images, 'shape', 'at least one image row', `(0, ${images.shape.slice(1).join(', ')})`);
    // As the reference: im_div from the full counts, then (dev) truncate the caption list.
    const imDiv = imageDivisor(nFile, allCaptions.length, p.images, p.captions);
    let captions: readonly string[] = allCaptions;
    if (opts.maxCaptions !== undefined && opts.maxCaptions < allCaptions.length) {
      if (!Number.isInteger(opts.maxCaptions) || opts.maxCaptions < 0) {
        throw new VslError(`maxCaptions: expected a non-negative integer, found ${opts.maxCaptions}`);
      }
      captions = allCaptions.slice(0, opts.maxCaptions);
    }
    const nCaptions = captions.length;
    return {
      dataPath,
      dataName,
      split,
      paths: p,
      images,
      captions,
      imDiv,
      nCaptions,
      nImages: Math.ceil(nCaptions / imDiv),
      nImagesInFile: nFile,
      imgDim: images.shape[2],
      imageOf: (c: number) => Math.floor(c / imDiv),
      close: () => images.close(),
    };
  } catch (e) {
    images.close();
    throw e;
  }
}
