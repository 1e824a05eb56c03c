using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace IsolateGrains.Guest;

/// <summary>
/// Copies bytes with <c>cpblk</c>, which the guest's interpreter runs as a native memmove. <see cref="Span{T}.CopyTo"/>
/// runs the managed memmove, interpreted: several times dearer for the few bytes of a name, a request or a reply.
/// </summary>
internal static unsafe class ByteCopy
{
    /// <summary>Copies <paramref name="source"/> to the start of <paramref name="destination"/>, which must not overlap it.</summary>
    public static void Copy(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        if (source.Length > destination.Length)
        {
            throw new ArgumentException("The destination is shorter than the source.", nameof(destination));
        }
        if (!source.IsEmpty)
        {
            Unsafe.CopyBlockUnaligned(ref MemoryMarshal.GetReference(destination), ref MemoryMarshal.GetReference(source), (uint)source.Length);
        }
    }
}
