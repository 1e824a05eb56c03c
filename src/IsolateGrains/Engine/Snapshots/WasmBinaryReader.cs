using System.Text;

namespace IsolateGrains.Engine.Snapshots;

/// <summary>
/// A forward-only reader of the primitive encodings of the WebAssembly binary format: bytes, LEB128 integers
/// and UTF-8 names.
/// </summary>
/// <remarks>
/// Every failure is an <see cref="InvalidDataException"/> naming the absolute module offset, so that a truncated
/// or corrupted module surfaces as "malformed module at offset N: ..." rather than as an index exception deep
/// inside the rewriter. LEB128 decoding is as strict as the specification: an encoding longer than
/// ceil(N / 7) bytes, or whose unused high bits are not a zero (unsigned) or sign (signed) extension, is rejected.
/// </remarks>
internal ref struct WasmBinaryReader
{
    /// <summary>Strict UTF-8: the specification requires names to be valid UTF-8.</summary>
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The bytes being read (a whole module or one section's payload).</summary>
    private readonly ReadOnlySpan<byte> data;

    /// <summary>The absolute module offset of <see cref="data"/>'s first byte, for error messages.</summary>
    private readonly int baseOffset;

    /// <summary>The next byte to read, relative to <see cref="data"/>.</summary>
    private int position;

    /// <summary>Creates a reader over <paramref name="data"/>.</summary>
    /// <param name="data">The bytes to read.</param>
    /// <param name="baseOffset">Where <paramref name="data"/> starts within the module, so that errors name absolute offsets.</param>
    public WasmBinaryReader(ReadOnlySpan<byte> data, int baseOffset = 0)
    {
        this.data = data;
        this.baseOffset = baseOffset;
        position = 0;
    }

    /// <summary>The position of the next byte, relative to the start of the data.</summary>
    public readonly int Position => position;

    /// <summary>The absolute module offset of the next byte.</summary>
    public readonly int AbsolutePosition => baseOffset + position;

    /// <summary>How many bytes are left.</summary>
    public readonly int Remaining => data.Length - position;

    /// <summary>Whether every byte has been read.</summary>
    public readonly bool IsAtEnd => position >= data.Length;

    /// <summary>Reads one byte.</summary>
    public byte ReadByte()
    {
        if (position >= data.Length)
        {
            throw Malformed("unexpected end of data");
        }

        return data[position++];
    }

    /// <summary>Reads <paramref name="count"/> raw bytes.</summary>
    /// <param name="count">The number of bytes.</param>
    public ReadOnlySpan<byte> ReadBytes(int count)
    {
        if (count < 0 || count > Remaining)
        {
            throw Malformed($"{count} bytes expected but only {Remaining} remain");
        }

        var bytes = data.Slice(position, count);
        position += count;
        return bytes;
    }

    /// <summary>Skips <paramref name="count"/> bytes.</summary>
    /// <param name="count">The number of bytes.</param>
    public void Skip(int count) => ReadBytes(count);

    /// <summary>Reads an unsigned LEB128 <c>u32</c> (section sizes, counts, indices).</summary>
    public uint ReadVarUInt32() => (uint)ReadUnsigned(32);

    /// <summary>Reads an unsigned LEB128 <c>u64</c> (memory64 limits).</summary>
    public ulong ReadVarUInt64() => ReadUnsigned(64);

    /// <summary>Reads a signed LEB128 <c>s32</c> (the immediate of <c>i32.const</c>).</summary>
    public int ReadVarInt32() => (int)ReadSigned(32);

    /// <summary>Reads a signed LEB128 <c>s33</c> (heap types and block types).</summary>
    public long ReadVarInt33() => ReadSigned(33);

    /// <summary>Reads a signed LEB128 <c>s64</c> (the immediate of <c>i64.const</c>).</summary>
    public long ReadVarInt64() => ReadSigned(64);

    /// <summary>
    /// Reads a vector length or an index as an <see cref="int"/>, rejecting values that cannot be meant
    /// (larger than <see cref="int.MaxValue"/>) rather than letting them become negative.
    /// </summary>
    /// <param name="what">What the value counts, for the error message.</param>
    public int ReadIndex(string what)
    {
        var start = AbsolutePosition;
        var value = ReadVarUInt32();
        if (value > int.MaxValue)
        {
            throw new InvalidDataException($"Malformed WebAssembly module at offset {start}: {what} {value} is too large.");
        }

        return (int)value;
    }

    /// <summary>
    /// Reads the length of a vector whose elements take at least one byte each, rejecting lengths larger than
    /// what remains so that a corrupted count cannot make a caller allocate gigabytes.
    /// </summary>
    /// <param name="what">What the vector holds, for the error message.</param>
    public int ReadCount(string what)
    {
        var start = AbsolutePosition;
        var count = ReadVarUInt32();
        if (count > (uint)Remaining)
        {
            throw new InvalidDataException(
                $"Malformed WebAssembly module at offset {start}: {count} {what} declared but only {Remaining} bytes remain.");
        }

        return (int)count;
    }

    /// <summary>Reads a name: a byte vector holding valid UTF-8.</summary>
    public string ReadName()
    {
        var start = AbsolutePosition;
        var length = ReadCount("name bytes");
        var bytes = ReadBytes(length);
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new InvalidDataException($"Malformed WebAssembly module at offset {start}: a name is not valid UTF-8.", e);
        }
    }

    /// <summary>Throws unless every byte has been read: a section whose content ends early is malformed.</summary>
    /// <param name="what">What was being read, for the error message.</param>
    public readonly void ExpectEnd(string what)
    {
        if (!IsAtEnd)
        {
            throw Malformed($"{Remaining} unexpected trailing bytes after the {what}");
        }
    }

    /// <summary>An exception for malformed data at the current position.</summary>
    /// <param name="message">What is wrong.</param>
    public readonly InvalidDataException Malformed(string message) =>
        new($"Malformed WebAssembly module at offset {AbsolutePosition}: {message}.");

    /// <summary>Decodes an unsigned LEB128 integer of at most <paramref name="bits"/> bits.</summary>
    /// <param name="bits">The width of the integer (32 or 64).</param>
    private ulong ReadUnsigned(int bits)
    {
        var start = AbsolutePosition;
        var maxBytes = (bits + 6) / 7;
        ulong result = 0;
        var shift = 0;
        for (var i = 0; i < maxBytes; i++)
        {
            var b = ReadByte();
            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                // In the last permitted byte only the bits that still fit in the integer may be set.
                var bitsLeft = bits - shift;
                if (bitsLeft < 7 && (b >> bitsLeft) != 0)
                {
                    throw new InvalidDataException($"Malformed WebAssembly module at offset {start}: unsigned LEB128 integer exceeds {bits} bits.");
                }

                return result;
            }

            shift += 7;
        }

        throw new InvalidDataException($"Malformed WebAssembly module at offset {start}: unsigned LEB128 integer longer than {maxBytes} bytes.");
    }

    /// <summary>Decodes a signed LEB128 integer of at most <paramref name="bits"/> bits.</summary>
    /// <param name="bits">The width of the integer (32, 33 or 64).</param>
    private long ReadSigned(int bits)
    {
        var start = AbsolutePosition;
        var maxBytes = (bits + 6) / 7;
        long result = 0;
        var shift = 0;
        for (var i = 0; i < maxBytes; i++)
        {
            var b = ReadByte();
            result |= (long)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                // In the last permitted byte, the bits from the value's sign bit upwards must all be equal
                // (a sign extension); anything else encodes a value that does not fit.
                var bitsLeft = bits - shift;
                if (bitsLeft < 7)
                {
                    var upper = (b & 0x7F) >> (bitsLeft - 1);
                    var allOnes = 0x7F >> (bitsLeft - 1);
                    if (upper != 0 && upper != allOnes)
                    {
                        throw new InvalidDataException($"Malformed WebAssembly module at offset {start}: signed LEB128 integer exceeds {bits} bits.");
                    }
                }

                shift += 7;
                if (shift < 64 && (b & 0x40) != 0)
                {
                    result |= -1L << shift;
                }

                return result;
            }

            shift += 7;
        }

        throw new InvalidDataException($"Malformed WebAssembly module at offset {start}: signed LEB128 integer longer than {maxBytes} bytes.");
    }
}
