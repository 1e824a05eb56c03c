using IsolateGrains.Engine.FileSystem;

namespace IsolateGrains.Engine;

/// <summary>
/// The host-side state that belongs with a captured memory image: where the dispatcher and mailbox
/// are, the guest's clocks and pending event-loop work, and its open files. Saved beside the cached
/// module as JSON.
/// </summary>
/// <param name="DispatchMethod">The <c>MonoMethod*</c> of the guest dispatcher.</param>
/// <param name="MailboxAddress">The mailbox's address in guest memory.</param>
/// <param name="MonotonicMilliseconds">The guest's monotonic clock when captured.</param>
/// <param name="TimerDueMilliseconds">When a pending guest timer is due, on that clock.</param>
/// <param name="BackgroundWorkPending">Whether background work was pending.</param>
/// <param name="OpenFiles">The descriptor table.</param>
internal sealed record ImageState(
    int DispatchMethod,
    int MailboxAddress,
    double MonotonicMilliseconds,
    double? TimerDueMilliseconds,
    bool BackgroundWorkPending,
    IReadOnlyList<OpenFileState> OpenFiles)
{
    /// <summary>
    /// The hash of the image's memory bytes (<see cref="Snapshots.ImageBaseline.HashMemory"/>), which snapshots
    /// record as a last check that the bytes under a snapshot are the ones it was taken over (builds are
    /// reproducible, so this differs only when the code that built them did). Null in
    /// entries cached before it existed (it is then computed from the image when first needed).
    /// </summary>
    public string? MemoryHash { get; init; }

    /// <summary>The state of a module that has not booted yet: standard streams open, nothing else.</summary>
    public static ImageState Unbooted { get; } = new(0, 0, 0, null, false,
    [
        new OpenFileState(0, "/dev/stdin", OpenFlags.ReadOnly, 0),
        new OpenFileState(1, "/dev/stdout", OpenFlags.WriteOnly, 0),
        new OpenFileState(2, "/dev/stderr", OpenFlags.WriteOnly, 0),
    ]);
}
