namespace IsolateGrains.Protocol;

/// <summary>
/// Layout of the mailbox: a small block of guest memory, allocated at boot, through which the host
/// hands a request to the guest dispatcher and finds its reply. It lives in guest memory so that it
/// travels with every snapshot.
/// </summary>
internal static class Mailbox
{
    /// <summary>Address of the request buffer (host-allocated with <c>malloc</c>).</summary>
    public const int RequestPointer = 0;
    /// <summary>Length of the request in that buffer.</summary>
    public const int RequestLength = 4;
    /// <summary>Address of the reply (guest-owned; valid until the next call).</summary>
    public const int ResponsePointer = 8;
    /// <summary>Length of the reply.</summary>
    public const int ResponseLength = 12;
    /// <summary>Capacity of the request buffer.</summary>
    public const int RequestCapacity = 16;
    /// <summary>Size of the mailbox in bytes.</summary>
    public const int Size = 32;
}

/// <summary>The guest→host channel: <c>/dev/host</c>, one read carrying the request in and the reply out.</summary>
internal static class HostChannel
{
    /// <summary>The device path.</summary>
    public const string Path = "/dev/host";

    /// <summary>A request length that asks for a reply too large for the previous buffer.</summary>
    public const int FetchPendingReply = -1;
}

/// <summary>What the host asks the guest dispatcher to do (the first element of every request).</summary>
internal enum GuestRequestKind
{
    /// <summary>Invoke a delegate: its method by metadata token, its target serialized.</summary>
    InvokeDelegate = 1,
    /// <summary>Exercise the dispatcher and serializer paths before the image is captured.</summary>
    Warmup = 2,
    /// <summary>Collect garbage, so that a captured image or snapshot holds no dead objects and an empty nursery.</summary>
    CollectGarbage = 3,
}

/// <summary>What the guest asks the host (the first element of every guest→host request).</summary>
internal enum HostRequestKind
{
    /// <summary>Give me the bytes of an assembly, by name, from the host's loaders.</summary>
    LoadAssembly = 1,
}

/// <summary>How a call ended (the first element of every reply).</summary>
internal enum ReplyStatus
{
    /// <summary>Completed; a serialized result (or nil) follows.</summary>
    Success = 0,
    /// <summary>Guest code threw; type, message and stack trace follow.</summary>
    GuestException = 1,
    /// <summary>The request itself was malformed or named something unknown; a message follows.</summary>
    BadRequest = 2,
}
