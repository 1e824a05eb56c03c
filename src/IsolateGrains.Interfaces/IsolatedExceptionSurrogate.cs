namespace IsolateGrains;

/// <summary>
/// Lets Orleans carry an <see cref="IsolatedException"/> between silos and clients with its guest details
/// (the exception type lives in the guest runtime assembly, which knows nothing of Orleans).
/// </summary>
[GenerateSerializer, Immutable]
public struct IsolatedExceptionSurrogate
{
    /// <summary>The message.</summary>
    [Id(0)] public string Message;
    /// <summary>The guest exception's type, if guest code threw.</summary>
    [Id(1)] public string? GuestExceptionType;
    /// <summary>The guest stack trace.</summary>
    [Id(2)] public string? GuestStackTrace;
    /// <summary>The guest exception's full text.</summary>
    [Id(3)] public string? GuestDetails;
    /// <summary>Whether the sandbox itself failed.</summary>
    [Id(4)] public bool IsFatal;
    /// <summary>Whether the sandbox was replaced.</summary>
    [Id(5)] public bool SandboxWasReset;
}

/// <summary>Converts <see cref="IsolatedException"/> to and from its surrogate.</summary>
[RegisterConverter]
public sealed class IsolatedExceptionConverter : IConverter<IsolatedException, IsolatedExceptionSurrogate>
{
    /// <inheritdoc />
    public IsolatedException ConvertFromSurrogate(in IsolatedExceptionSurrogate surrogate) => surrogate.GuestExceptionType is { } type
        ? new IsolatedException(type, surrogate.Message, surrogate.GuestStackTrace, surrogate.GuestDetails) { IsFatal = surrogate.IsFatal, SandboxWasReset = surrogate.SandboxWasReset }
        : new IsolatedException(surrogate.Message) { IsFatal = surrogate.IsFatal, SandboxWasReset = surrogate.SandboxWasReset };

    /// <inheritdoc />
    public IsolatedExceptionSurrogate ConvertToSurrogate(in IsolatedException value) => new()
    {
        Message = value.Message,
        GuestExceptionType = value.GuestExceptionType,
        GuestStackTrace = value.GuestStackTrace,
        GuestDetails = value.GuestDetails,
        IsFatal = value.IsFatal,
        SandboxWasReset = value.SandboxWasReset,
    };
}
