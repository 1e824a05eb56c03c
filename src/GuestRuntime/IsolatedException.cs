using System.Text;

namespace IsolateGrains;

/// <summary>
/// Something went wrong inside a sandbox, or at its boundary: guest code threw (then
/// <see cref="GuestExceptionType"/> and <see cref="GuestStackTrace"/> say what and where), the guest
/// trapped, ran past its deadline or its memory limit (<see cref="IsFatal"/>), or a request or reply
/// was refused (unknown names, oversized payloads). The host process and other sandboxes are unaffected.
/// </summary>
public class IsolatedException : Exception
{
    /// <summary>Creates an exception with a message.</summary>
    public IsolatedException(string message) : base(message)
    {
    }

    /// <summary>Creates an exception with a message and a host-side cause.</summary>
    public IsolatedException(string message, Exception? innerException) : base(message, innerException)
    {
    }

    /// <summary>Creates an exception describing one thrown by guest code.</summary>
    public IsolatedException(string guestExceptionType, string message, string? guestStackTrace, string? guestDetails)
        : base(message)
    {
        GuestExceptionType = guestExceptionType;
        GuestStackTrace = guestStackTrace;
        GuestDetails = guestDetails;
    }

    /// <summary>The full name of the exception type thrown inside the sandbox, if guest code threw.</summary>
    public string? GuestExceptionType { get; }

    /// <summary>The stack trace inside the sandbox, if guest code threw.</summary>
    public string? GuestStackTrace { get; }

    /// <summary>The guest exception's full text (inner exceptions included), if guest code threw.</summary>
    public string? GuestDetails { get; }

    /// <summary>
    /// True when the sandbox itself failed (trap, deadline, memory limit): its state was lost. An
    /// <c>IsolatedRuntime</c> replaces it with a fresh sandbox for the next call
    /// (<see cref="SandboxWasReset"/>).
    /// </summary>
    public bool IsFatal { get; init; }

    /// <summary>True when the runtime replaced the failed sandbox with a fresh one; statics and objects inside it are gone.</summary>
    public bool SandboxWasReset { get; init; }

    /// <inheritdoc />
    public override string ToString()
    {
        if (GuestExceptionType is null)
        {
            return base.ToString();
        }
        var text = new StringBuilder();
        text.Append(GetType().FullName).Append(": ").Append(GuestExceptionType).Append(": ").AppendLine(Message);
        text.AppendLine("--- guest stack trace ---");
        text.AppendLine(GuestStackTrace ?? "(none)");
        text.AppendLine("--- host stack trace ---");
        text.Append(StackTrace);
        return text.ToString();
    }
}
