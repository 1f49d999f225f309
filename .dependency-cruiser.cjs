// The layers of octoclip, enforced (npm test runs `depcruise src`); docs/architecture.md draws them.
//
//   common           GPU-free rules and defaults that the page and the engine share
//   gpu -> kernels -> model -> adapters -> training      the engine: takes a GPUDevice, never the DOM or React
//   worker, node, cli, api                                 hosts of the engine (a Web Worker, Node, the library)
//   storage          the browser's IndexedDB
//   ui               the studio: React and zustand; talks to the engine only through the worker's protocol
const ENGINE = '^src/(gpu|kernels|model|adapters|training)/';
const NOT_UI = '^src/(common|gpu|kernels|model|adapters|training|worker|node|cli|api|storage)/';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment:
        'An import cycle makes the order of module initialisation matter; break it with a module both sides use. ' +
        'A cycle closed only by type imports is erased at compile time and allowed.',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'engine-without-react',
      severity: 'error',
      comment: 'Only the studio (src/ui) renders: the engine, its hosts and storage stay framework-free.',
      from: { path: NOT_UI },
      to: { path: '^node_modules/(react|react-dom|zustand)/' },
    },
    {
      name: 'ui-through-the-worker',
      severity: 'error',
      comment:
        'The page never touches the GPU: it reaches the engine through src/worker/{protocol,client}.ts and shares only src/common.',
      from: { path: '^src/ui/' },
      to: { path: '^src/(gpu|kernels|model|adapters|training|node|cli|api)/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'ui-not-worker-internals',
      severity: 'error',
      comment: 'The page uses the worker through its protocol and client; the worker itself runs in its own thread.',
      from: { path: '^src/ui/' },
      to: { path: '^src/worker/', pathNot: '^src/worker/(protocol|client)\\.ts$', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'common-is-gpu-free',
      severity: 'error',
      comment: 'src/common is shared by the page and the engine: plain TypeScript only.',
      from: { path: '^src/common/' },
      to: { path: '^src/(?!common/)' },
    },
    {
      name: 'engine-layers-point-down',
      severity: 'error',
      comment: 'gpu -> kernels -> model -> adapters -> training: a layer imports only the layers below it.',
      from: { path: '^src/(gpu|kernels|model|adapters|training)/' },
      to: { path: '^src/(worker|node|cli|api|storage|ui)/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'gpu-is-the-bottom',
      severity: 'error',
      from: { path: '^src/gpu/' },
      to: { path: '^src/(kernels|model|adapters|training)/' },
    },
    {
      name: 'kernels-below-model',
      severity: 'error',
      from: { path: '^src/kernels/' },
      to: { path: '^src/(model|adapters|training)/' },
    },
    {
      name: 'model-below-adapters',
      severity: 'error',
      comment: 'model/ owns Tower, TargetMatrix and the adapter interface that adapters/ implements.',
      from: { path: '^src/model/' },
      to: { path: '^src/(adapters|training)/' },
    },
    {
      name: 'adapters-below-training',
      severity: 'error',
      from: { path: '^src/adapters/' },
      to: { path: '^src/training/' },
    },
    {
      name: 'node-only-outside-the-browser',
      severity: 'error',
      comment:
        'Node built-ins belong to src/node, src/cli and the Node entry of the library; the engine runs in a worker too.',
      from: { path: `${ENGINE}|^src/(common|worker|ui|storage)/` },
      to: { dependencyTypes: ['core'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '\\.(css|wgsl)(\\?raw)?$' },
  },
};
