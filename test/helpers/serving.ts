/** A small schema with every kind of feature and task, its training rows, and a model for it (serving tests). */
import { createModel, fitSchema, modelSections, parseCsv, schemaColumns, type FeatureRow, type Model, type SchemaSpec } from '../../lib';

export const SPEC: SchemaSpec = {
  dense: ['age', { column: 'minutes', normalize: 'log1p' }, { column: 'price', normalize: 'minmax' }],
  categorical: ['city', { column: 'device', hashBuckets: 50 }, { column: 'item', minFrequency: 2 }],
  multiValued: ['genres', { column: 'tags', hashBuckets: 13, separator: ';' }],
  tasks: [
    { name: 'click', type: 'binary', column: 'clicked', positive: 1 },
    { name: 'rating', type: 'multiclass', column: 'rating', classes: ['low', 'mid', 'high'] },
    { name: 'watch', type: 'regression', column: 'watch' },
  ],
};

export const CSV = [
  'age,minutes,price,city,device,item,genres,tags,clicked,rating,watch',
  '31,12.5,3,Paris,ios,i1,comedy|drama,a;b,1,high,40',
  '45,3,10,Lyon,web,i2,documentary,b,0,low,5',
  '22,,7.5,Paris,android,i1,,c; a,1,mid,22',
  '?,40,1,Zürich,ios,i3,comedy,,0,mid,31',
  '60,0,4,?,web,i2,drama|kids|comedy,a,1,high,12',
  '38,7,2,Lyon,,i1,kids,b;b,0,low,8',
].join('\n');

export const TRAIN = parseCsv(CSV, { ...schemaColumns(SPEC), source: 'train.csv' });
export const SCHEMA = fitSchema(SPEC, TRAIN);
const DENSE = new Set(['age', 'minutes', 'price']);

/** The training rows as a JSON client sends them: numbers for dense columns, null for missing cells. */
export const ROWS: FeatureRow[] = CSV.split('\n')
  .slice(1)
  .map((line) => {
    const cells = line.split(',');
    return Object.fromEntries(
      CSV.split('\n')[0]!
        .split(',')
        .map((column, i) => {
          const text = cells[i] as string;
          if (!DENSE.has(column)) return [column, text];
          return [column, text === '' || text === '?' ? null : Number(text)];
        }),
    );
  });

/** An untrained model for SCHEMA: serving tests compare predictions, not their quality. */
export function createServingModel(): Model {
  return createModel({ kind: 'mmoe', ...modelSections(SCHEMA, { embeddingDim: 4 }), experts: 2, expertDims: [[8]], towerDims: [4] });
}
