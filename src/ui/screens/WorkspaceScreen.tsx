// The Workspace: everything made here (classes, images, adapters, settings) exported as one file, and
// imported on another machine or browser.

import { Card } from '../components/Card';
import { FilePicker } from '../components/DropZone';
import { Note, Problem } from '../components/Notice';
import { Screen } from '../components/Screen';
import { WORKSPACE_FILE_EXTENSION } from '../../storage/workspace';
import { useWorkspaceStore } from '../stores/workspace';

export function WorkspaceScreen() {
  const { exportFile, importFile, busy, problem, notice, dismissProblem } = useWorkspaceStore();
  return (
    <Screen
      title="Workspace"
      intro="Everything you made in this browser, as one file: to keep, or to carry to another browser or computer."
    >
      <Card title="Export">
        <p>
          The dataset (classes and images), the adapter library and the training settings, in one{' '}
          <code>{WORKSPACE_FILE_EXTENSION}</code> file. Models are not in it: load them again from the Hub or their
          files.
        </p>
        <button type="button" disabled={busy} onClick={() => void exportFile()}>
          Export workspace
        </button>
      </Card>
      <Card title="Import">
        <p>Adds a workspace file to what is here: nothing here is replaced, except the training settings.</p>
        <FilePicker
          label="Import a workspace file"
          accept={WORKSPACE_FILE_EXTENSION}
          disabled={busy}
          onFiles={(files) => void importFile(files[0])}
        />
        <Note>
          A class with the same name as one here receives the imported images; what is already here is not added twice.
        </Note>
      </Card>
      {notice && (
        <p role="status" className="status-line" data-testid="workspace-notice">
          {notice}
        </p>
      )}
      {problem && (
        <Problem title="Not imported" onDismiss={dismissProblem}>
          <p data-testid="workspace-problem">{problem}</p>
        </Problem>
      )}
    </Screen>
  );
}
