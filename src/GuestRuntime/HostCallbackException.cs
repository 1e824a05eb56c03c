namespace IsolateGrains;

/// <summary>
/// Thrown inside a sandbox when a call to the host through <see cref="DotNetIsolatorHost"/> fails: no
/// callback has that name, or the host's callback threw (its message stays on the host, in its log).
/// </summary>
public sealed class HostCallbackException : Exception
{
    /// <summary>Creates the exception.</summary>
    public HostCallbackException(string message) : base(message)
    {
    }
}
