// An area that takes dropped files or folders. It is a target for the mouse only: every drop zone
// holds buttons or file inputs that do the same from the keyboard.

import { useState, type ReactNode } from 'react';

export function DropZone(props: {
  label: string;
  onDrop(dataTransfer: DataTransfer): void;
  disabled?: boolean;
  className?: string;
  children: ReactNode;
}) {
  const [over, setOver] = useState(false);
  return (
    // biome-ignore lint/a11y/useSemanticElements: a drop target around other controls, not a form's fieldset
    <div
      className={`drop-zone ${over ? 'drop-zone-over' : ''} ${props.className ?? ''}`}
      role="group"
      aria-label={props.label}
      onDragOver={(event) => {
        if (props.disabled || !event.dataTransfer.types.includes('Files')) return;
        event.preventDefault();
        event.dataTransfer.dropEffect = 'copy';
        setOver(true);
      }}
      onDragLeave={(event) => {
        if (!event.currentTarget.contains(event.relatedTarget as Node | null)) setOver(false);
      }}
      onDrop={(event) => {
        event.preventDefault();
        event.stopPropagation();
        setOver(false);
        if (!props.disabled) props.onDrop(event.dataTransfer);
      }}
    >
      {props.children}
    </div>
  );
}

/** A button that opens the file picker of a hidden file input (which keeps its label for tests and readers). */
export function FilePicker(props: {
  label: string;
  onFiles(files: FileList): void;
  accept?: string;
  multiple?: boolean;
  directory?: boolean;
  disabled?: boolean;
  secondary?: boolean;
}) {
  return (
    <label className={`file-picker ${props.secondary ? 'secondary' : ''} ${props.disabled ? 'disabled' : ''}`}>
      <input
        type="file"
        className="visually-hidden"
        accept={props.accept}
        multiple={props.multiple}
        disabled={props.disabled}
        // webkitdirectory is not in React's types; it turns the picker into a folder picker.
        {...(props.directory ? { webkitdirectory: '' } : {})}
        onChange={(event) => {
          if (event.target.files?.length) props.onFiles(event.target.files);
          event.target.value = ''; // picking the same files again is a new choice
        }}
      />
      <span>{props.label}</span>
    </label>
  );
}
