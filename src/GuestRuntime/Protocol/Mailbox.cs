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
    /// <summary>Create an object by constructor: <c>[CreateObject, assembly, type, args]</c>; replies <c>[handle, typeName]</c>.</summary>
    CreateObject = 4,
    /// <summary>Deserialize a copy of a host value into a new object: <c>[CopyObject, typeName, value]</c>; replies <c>[handle, typeName]</c>.</summary>
    CopyObject = 5,
    /// <summary>Resolve a method to an id: <c>[ResolveMethod, assembly, type, name, parameterCount]</c>; replies the id.</summary>
    ResolveMethod = 6,
    /// <summary>Invoke a method: <c>[InvokeMethod, target|nil, methodId | [type|nil, name], args, resultMode]</c>.</summary>
    InvokeMethod = 7,
    /// <summary>Release object handles: <c>[ReleaseObjects, [handles]]</c>.</summary>
    ReleaseObjects = 8,
    /// <summary>Complete an operation the guest awaits (an async host callback): <c>[CompleteOperation, id, succeeded, value|message]</c>.</summary>
    CompleteOperation = 9,
    /// <summary>Serialize an object the guest holds: <c>[GetObjectValue, handle]</c>.</summary>
    GetObjectValue = 10,
    /// <summary>
    /// Prepare methods without running them (resolve, build runners, build formatters), for a template
    /// sandbox: <c>[Prepare, [[key, [assembly, type, token, moduleVersionId]], ...]]</c>; replies the keys prepared.
    /// </summary>
    Prepare = 11,
}

/// <summary>What a caller wants back from a method call.</summary>
internal enum ResultMode
{
    /// <summary>A serialized copy of the result (awaited first if it is a task).</summary>
    Value = 0,
    /// <summary>A handle to the result object, which stays in the sandbox.</summary>
    Handle = 1,
}

/// <summary>What the guest asks the host (the first element of every guest→host request).</summary>
internal enum HostRequestKind
{
    /// <summary>Give me the bytes of an assembly, by name, from the host's loaders.</summary>
    LoadAssembly = 1,
    /// <summary>Call a host callback and wait: <c>[InvokeCallback, name, [args]]</c>; replies <c>[true, value]</c> or <c>[false, message]</c>.</summary>
    InvokeCallback = 2,
    /// <summary>Start an asynchronous host callback: <c>[InvokeCallbackAsync, name, [args], operationId]</c>; the result arrives later as <see cref="GuestRequestKind.CompleteOperation"/>.</summary>
    InvokeCallbackAsync = 3,
    /// <summary>An operation the host awaits has finished: <c>[OperationCompleted, operationId, reply]</c>.</summary>
    OperationCompleted = 4,
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
    /// <summary>The result is a task still running; an operation id follows, and the reply comes later.</summary>
    Pending = 3,
}
