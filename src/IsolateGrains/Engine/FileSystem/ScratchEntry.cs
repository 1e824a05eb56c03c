namespace IsolateGrains.Engine.FileSystem;

/// <summary>One directory or file of a sandbox's scratch area, as a snapshot carries it.</summary>
/// <param name="Path">The absolute, normalized path (under <see cref="VirtualFileSystem.ScratchRoot"/>).</param>
/// <param name="IsDirectory">True for a directory, false for a file.</param>
/// <param name="Content">A file's bytes (empty for a directory).</param>
internal sealed record ScratchEntry(string Path, bool IsDirectory, byte[] Content);
