// tests/deploy/k8s_schema.mjs: every object k8s_check.py built from
// deploy/k8s, validated against the Kubernetes API's OpenAPI schema as the
// npm package kubernetes-models compiles it (types, required fields, enums,
// formats). Unknown fields are not reported: the package's schemas allow
// them, so k8s_check.py reads the fields that matter by their exact paths.
//
//   node k8s_schema.mjs MODELS_DIR OBJECTS.json
//
// MODELS_DIR is the node_modules folder that holds kubernetes-models.
// Exits 1 when any object is invalid, or of a kind the package lacks.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [modelsDir, objectsFile] = process.argv.slice(2);
if (!modelsDir || !objectsFile) {
  console.error('usage: node k8s_schema.mjs MODELS_DIR OBJECTS.json');
  process.exit(2);
}
const objects = JSON.parse(readFileSync(objectsFile, 'utf8'));
let failed = 0;
for (const object of objects) {
  const what = `${object.kind} ${object.metadata?.name} (${object.apiVersion})`;
  // "apps/v1" -> apps/v1, "v1" (the core group) -> v1.
  const file = join(modelsDir, 'kubernetes-models', ...String(object.apiVersion).split('/'), `${object.kind}.js`);
  if (!existsSync(file)) {
    console.log(`FAIL - ${what}: no schema for this apiVersion and kind`);
    failed++;
    continue;
  }
  const model = (await import(pathToFileURL(file).href))[object.kind];
  try {
    new model(object).validate();
    console.log(`ok   - schema: ${what}`);
  } catch (error) {
    console.log(`FAIL - schema: ${what}: ${error.message}`);
    failed++;
  }
}
if (objects.length === 0) {
  console.log('FAIL - no objects to validate');
  failed++;
}
process.exit(failed ? 1 : 0);
