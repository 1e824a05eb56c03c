using IsolateGrains.Engine.FileSystem;

namespace IsolateGrains.Engine.Snapshots;

/// <summary>
/// The host-side state of a sandbox that a snapshot carries beside its memory: the guest's clock and
/// event-loop work, and its files. What the dispatcher's address and the mailbox are is not here: they
/// are the image's, and a restored sandbox keeps them.
/// </summary>
/// <param name="MonotonicMilliseconds">The guest's monotonic clock when captured; a restored sandbox's clock continues from it.</param>
/// <param name="TimerDueInMilliseconds">
/// How long after the capture the pending guest timer was due (relative, because the monotonic clock of
/// another process starts elsewhere); null when no timer was pending.
/// </param>
/// <param name="BackgroundWorkPending">Whether background work was pending.</param>
/// <param name="CurrentDirectory">The current directory.</param>
/// <param name="OpenFiles">The descriptor table.</param>
/// <param name="Scratch">The scratch area's directories and files, parents first.</param>
internal sealed record SnapshotHostState(
    double MonotonicMilliseconds,
    double? TimerDueInMilliseconds,
    bool BackgroundWorkPending,
    string CurrentDirectory,
    IReadOnlyList<OpenFileState> OpenFiles,
    IReadOnlyList<ScratchEntry> Scratch);
