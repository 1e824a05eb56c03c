using MessagePack;

namespace IsolateGrains.Protocol;

/// <summary>
/// What MessagePack's reader throws for bytes that are not what they claim to be: a wrong code, the end reached, a
/// number too large for its type, or a length that runs past the end (its sequence reader throws
/// <see cref="ArgumentOutOfRangeException"/> for that). Parsers of bytes from outside — guest replies on the host,
/// requests in the guest — catch exactly these and report the bytes as malformed.
/// </summary>
internal static class MalformedMessagePack
{
    /// <summary>True for an exception that MessagePack's reading of malformed bytes throws (code that runs only MessagePack's reader).</summary>
    public static bool Is(Exception e) =>
        e is MessagePackSerializationException or EndOfStreamException or OverflowException or ArgumentOutOfRangeException;

    /// <summary>
    /// Like <see cref="Is"/>, for an exception from reading that may also have run the user's code (constructors,
    /// setters and getters that MessagePack calls, or the user's own formatters): every exception in the chain must be
    /// one of those types <em>and</em> thrown by MessagePack's or this library's code. What the user's code (or the
    /// base library, called from anywhere) throws is not the bytes' fault, and is reported as a guest exception.
    /// </summary>
    public static bool IsOnlyTheSerializers(Exception e)
    {
        return Chain(e).All(current => Is(current) && ThrownByTheSerializer(current));
    }

    /// <summary><paramref name="e"/> and its inner exceptions, outermost first.</summary>
    public static IEnumerable<Exception> Chain(Exception e)
    {
        for (Exception? current = e; current is not null; current = current.InnerException)
        {
            yield return current;
        }
    }

    private static bool ThrownByTheSerializer(Exception e) =>
        // TargetSite is the method that threw (null when unknown: then it counts as the user's, the safe side).
        e.TargetSite?.DeclaringType?.Assembly is { } assembly
        && (assembly == typeof(MessagePackReader).Assembly || assembly == typeof(MalformedMessagePack).Assembly);
}
